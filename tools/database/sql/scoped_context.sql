-- run_scoped_query: the call's settings, one statement, every value bound. set_config(name, value,
-- is_local=true) lasts until ROLLBACK; the transaction is read-only from here on (before any of the
-- agent's SQL runs). $1, $2: the caller's setting and id; $3, $4: statement and lock timeout; $5: the
-- idle-in-transaction timeout. Slots (psycopg.sql composition): {versions}, the version of the relations
-- the map alone scopes (sqlsafe/classify.py: versions_sql); {role}, scoped_role.sql or nothing;
-- {plain_only}, scoped_plain_only.sql or nothing; {catalog_check}, scoped_catalog_check.sql or nothing.
-- The settings are the arguments of one concat() (every argument is evaluated, in order): the statement
-- returns two columns, the version and one value of no interest, rather than one per setting.
SELECT {versions}, concat(set_config('transaction_read_only', 'on', true),
  set_config('client_min_messages', 'error', true), set_config($1, $2, true),
  set_config('statement_timeout', $3, true), set_config('lock_timeout', $4, true),
  set_config('idle_in_transaction_session_timeout', $5, true),
  set_config('search_path', 'pg_catalog, public', true){role}{plain_only}{catalog_check})
