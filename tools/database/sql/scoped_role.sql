-- run_scoped_query: a column of scoped_context.sql, the role the query runs as ($6)
, set_config('role', $6, true)
