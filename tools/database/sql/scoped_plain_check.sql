-- run_scoped_query: after the query, in its transaction and its segment (so on the same server connection,
-- through a transaction pooler too; the query's locks keep the tables as they are). Every relation it
-- read should still be a plain table without row security, as the cached map said. If one is not, a
-- policy's code may have run: the connection is reset here, as scoped_reset.sql does (advisory locks
-- released, random() reseeded from a strong source), and the statement returns true.
-- Slot (psycopg.sql composition): oids, "= ANY(...)" over the oids as integer literals (nothing to bind).
SELECT CASE WHEN EXISTS (SELECT FROM pg_catalog.pg_class
    WHERE oid {oids} AND (relrowsecurity OR relkind NOT IN ('r', 'p')))
  THEN pg_catalog.pg_advisory_unlock_all() IS NOT NULL AND pg_catalog.setseed(('x' || pg_catalog.substr(
    pg_catalog.md5(pg_catalog.gen_random_uuid()::text), 1, 8))::bit(32)::int4 / 2147483648.0) IS NOT NULL
  ELSE false END
