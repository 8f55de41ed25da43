-- project/scratch.py: the scratch database's state, kept as the database's comment; and its name
SELECT shobj_description(oid, 'pg_database'), current_database() FROM pg_database WHERE datname = current_database()
