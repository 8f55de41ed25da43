-- explain_indexes (run_script, %s quoted in client-side): the size of an index built for the trial
SELECT pg_relation_size(%s::regclass)
