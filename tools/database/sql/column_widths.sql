-- explain_indexes (run_script, %s quoted in client-side: the qualified table names): the columns'
-- average widths, for the WAL estimate of a new index
SELECT schemaname || '.' || tablename, attname, avg_width, n_distinct, null_frac
FROM pg_stats
WHERE schemaname || '.' || tablename = ANY(%s)
