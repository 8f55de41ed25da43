-- sqlsafe/classify.py's catalog version (an expression; see CATALOG_VERSION_SQL there). Objects a user or an
-- extension created have oids from 16384 (FirstNormalObjectId) up, and the oid indexes find them without
-- reading the built-in rows; the per-relation catalogs are read through their relation indexes.
(WITH ns AS (SELECT oid, xmin FROM pg_catalog.pg_namespace
    WHERE nspname NOT IN ('pg_catalog', 'information_schema') AND nspname !~ '^pg_(toast|temp_)'),
  rel AS (SELECT oid, xmin FROM pg_catalog.pg_class
    WHERE oid >= 16384 AND relnamespace IN (SELECT oid FROM ns) AND relkind IN ('r', 'p', 'v', 'm', 'f'))
  SELECT concat_ws('.',
    (SELECT count(*) || ':' || coalesce(sum(xmin::text::bigint), 0) FROM rel),
    (SELECT count(*) || ':' || coalesce(sum(a.xmin::text::bigint), 0) FROM pg_catalog.pg_attribute a
      WHERE a.attrelid = ANY (ARRAY(SELECT oid FROM rel)) AND a.attnum > 0),
    (SELECT count(*) || ':' || coalesce(sum(k.xmin::text::bigint), 0) FROM pg_catalog.pg_constraint k
      WHERE k.conrelid = ANY (ARRAY(SELECT oid FROM rel))),
    (SELECT count(*) || ':' || coalesce(sum(r.xmin::text::bigint), 0) FROM pg_catalog.pg_rewrite r
      WHERE r.ev_class = ANY (ARRAY(SELECT oid FROM rel))),
    (SELECT count(*) || ':' || coalesce(sum(t.xmin::text::bigint), 0) FROM pg_catalog.pg_type t
      WHERE t.oid >= 16384 AND t.typnamespace IN (SELECT oid FROM ns)),
    (SELECT count(*) || ':' || coalesce(sum(xmin::text::bigint), 0) FROM ns),
    -- functions, operators and casts a query can be resolved to (verdicts of sqlsafe/resolved.py)
    (SELECT count(*) || ':' || coalesce(sum(p.xmin::text::bigint), 0) FROM pg_catalog.pg_proc p
      WHERE p.oid >= 16384 AND p.pronamespace IN (SELECT oid FROM ns)),
    (SELECT count(*) || ':' || coalesce(sum(o.xmin::text::bigint), 0) FROM pg_catalog.pg_operator o
      WHERE o.oid >= 16384 AND o.oprnamespace IN (SELECT oid FROM ns)),
    (SELECT count(*) || ':' || coalesce(sum(c.xmin::text::bigint), 0) FROM pg_catalog.pg_cast c
      WHERE c.oid >= 16384)))
