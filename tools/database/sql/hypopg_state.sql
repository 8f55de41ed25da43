-- explain_indexes: whether hypopg is installed in this database, or could be
SELECT (SELECT count(*) FROM pg_extension WHERE extname = 'hypopg') AS installed,
       (SELECT count(*) FROM pg_available_extensions WHERE name = 'hypopg') AS available
