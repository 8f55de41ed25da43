-- run_scoped_query: after the query, in its transaction and its segment (so on the same server connection,
-- through a transaction pooler too; the query's locks keep the tables as they are). Every relation it
-- read should still be a plain table without row security, as the cached map said. If one is not, a
-- policy's code may have run: the connection is reset here, and the statement returns true.
-- Slots (psycopg.sql composition): oids, "= ANY(...)" over the oids as integer literals (nothing to
-- bind); reset, scoped_reset.sql.
SELECT CASE WHEN EXISTS (SELECT FROM pg_catalog.pg_class
    WHERE oid {oids} AND (relrowsecurity OR relkind NOT IN ('r', 'p')))
  THEN {reset} ELSE false END
