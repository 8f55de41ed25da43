-- sqlsafe/resolved.py: the settings of the resolving transaction (local to it); $1: the timeouts
SELECT pg_catalog.set_config('client_min_messages', 'error', true),
       pg_catalog.set_config('statement_timeout', $1, true),
       pg_catalog.set_config('lock_timeout', $1, true),
       pg_catalog.set_config('search_path', 'pg_catalog, public', true)
