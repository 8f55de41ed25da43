-- run_scoped_query: after the query, in its transaction (the query's locks keep the tables as they are):
-- whether every relation it read is still a plain table without row security, as the cached map said
-- (sqlsafe/classify.py). False: a policy's code may have run, so the call resets the connection.
-- Slot (psycopg.sql composition): oids, "= ANY(...)" over the oids as integer literals (nothing to bind).
SELECT NOT EXISTS (SELECT FROM pg_catalog.pg_class
  WHERE oid {oids} AND (relrowsecurity OR relkind NOT IN ('r', 'p')))
