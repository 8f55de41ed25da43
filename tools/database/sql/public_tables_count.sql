-- project/bootstrap.py: how many tables the public schema holds (an empty database gets the spec)
SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
