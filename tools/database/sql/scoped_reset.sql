-- run_scoped_query: what resets a pooled connection after a call (an expression, true once done):
-- advisory locks released and random() reseeded from a strong source (gen_random_uuid). Both calls
-- return a value, never NULL, so both are evaluated. Run as a statement of its own (select_value.sql)
-- after the call's ROLLBACK (pipeline.py: reset).
(pg_catalog.pg_advisory_unlock_all() IS NOT NULL AND pg_catalog.setseed(('x' || pg_catalog.substr(
  pg_catalog.md5(pg_catalog.gen_random_uuid()::text), 1, 8))::bit(32)::int4 / 2147483648.0) IS NOT NULL)
