-- project/scratch.py: one rebuild of the scratch database at a time, across processes ($1: the lock key)
SELECT pg_advisory_xact_lock($1)
