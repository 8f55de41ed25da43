SELECT id, title FROM tasks t WHERE t.id = $1
=
SELECT * FROM (SELECT id, title FROM (SELECT * FROM public.tasks AS _sa1 WHERE _sa1.user_id = CAST($2 AS pg_catalog.text) OFFSET 0) AS t WHERE t.id = $1 LIMIT 101) AS _sa_rows WHERE CAST(CASE WHEN pg_catalog.octet_length(CAST(_sa_rows AS pg_catalog.text)) > 1048576 THEN 'schema-architect: a row over the size limit' END AS integer) IS NULL

WITH b AS (SELECT * FROM tasks), tasks AS (SELECT 1 AS x) SELECT * FROM b, tasks
=
SELECT * FROM (WITH b AS (SELECT * FROM (SELECT * FROM public.tasks AS _sa1 WHERE _sa1.user_id = CAST($1 AS pg_catalog.text) OFFSET 0) AS tasks), tasks AS (SELECT 1 AS x) SELECT * FROM b, tasks LIMIT 101) AS _sa_rows WHERE CAST(CASE WHEN pg_catalog.octet_length(CAST(_sa_rows AS pg_catalog.text)) > 1048576 THEN 'schema-architect: a row over the size limit' END AS integer) IS NULL

SELECT * FROM task_tags
=
SELECT * FROM (SELECT * FROM (SELECT * FROM public.task_tags AS _sa1 WHERE EXISTS (SELECT 1 FROM public.tasks AS _sa2 WHERE _sa2.id = _sa1.task_id AND _sa2.user_id = CAST($1 AS pg_catalog.text)) AND EXISTS (SELECT 1 FROM public.tags AS _sa3 WHERE _sa3.id = _sa1.tag_id AND _sa3.user_id = CAST($1 AS pg_catalog.text)) OFFSET 0) AS task_tags LIMIT 101) AS _sa_rows WHERE CAST(CASE WHEN pg_catalog.octet_length(CAST(_sa_rows AS pg_catalog.text)) > 1048576 THEN 'schema-architect: a row over the size limit' END AS integer) IS NULL

SELECT u.email, lower(c.name) FROM "users" u, public.colors c ORDER BY 1 LIMIT 5
=
SELECT * FROM (SELECT u.email, pg_catalog.lower(c.name) FROM (SELECT * FROM public.users AS _sa1 WHERE _sa1.id = CAST($1 AS pg_catalog.text) OFFSET 0) AS u, public.colors AS c ORDER BY 1 LIMIT 5) AS _sa_rows WHERE CAST(CASE WHEN pg_catalog.octet_length(CAST(_sa_rows AS pg_catalog.text)) > 1048576 THEN 'schema-architect: a row over the size limit' END AS integer) IS NULL LIMIT 101

EXPLAIN SELECT * FROM ONLY U&"t\0061sks"
=
EXPLAIN (costs off) SELECT * FROM (SELECT * FROM ONLY public.tasks AS _sa1 WHERE _sa1.user_id = CAST($1 AS pg_catalog.text) OFFSET 0) AS tasks

SELECT (WITH tasks AS (SELECT 1 AS title) SELECT count(*) FROM tasks), (SELECT count(*) FROM tasks)
=
SELECT * FROM (SELECT (WITH tasks AS (SELECT 1 AS title) SELECT pg_catalog.count(*) FROM tasks), (SELECT pg_catalog.count(*) FROM (SELECT * FROM public.tasks AS _sa1 WHERE _sa1.user_id = CAST($1 AS pg_catalog.text) OFFSET 0) AS tasks) LIMIT 101) AS _sa_rows WHERE CAST(CASE WHEN pg_catalog.octet_length(CAST(_sa_rows AS pg_catalog.text)) > 1048576 THEN 'schema-architect: a row over the size limit' END AS integer) IS NULL
