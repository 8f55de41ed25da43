-- run_scoped_query: after the call, in the same write but its own transaction (pipeline.py: reset):
-- advisory locks released and random() reseeded from a strong source (gen_random_uuid).
SELECT pg_catalog.pg_advisory_unlock_all(), pg_catalog.setseed(('x' || pg_catalog.substr(
  pg_catalog.md5(pg_catalog.gen_random_uuid()::text), 1, 8))::bit(32)::int4 / 2147483648.0)
