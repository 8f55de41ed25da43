-- run_scoped_query: an argument of scoped_context.sql's concat(), the role the query runs as ($6)
, set_config('role', $6, true)
