-- sqlsafe/classify.py: the relations outside the system schemas, with their owner-column type, the type
-- of a column named id, outgoing foreign keys (with referenced column types), and for views the relations
-- their rewrite rules read; also user-defined type names, for result column types. One round trip.
-- $1: the owner column. Slots filled by psycopg.sql composition (a literal brace in the statement is
-- doubled): {catalog_version} is catalog_version.sql, {relation_version} relation_version.sql.
SELECT current_database() AS db, {catalog_version} AS catalog_version, current_schemas(false) AS search_path,
  -- restrict_nonsystem_relation_kind: PostgreSQL 17, and 16.4 / 15.8 / 14.13 / 13.16 on (NULL before)
  current_setting('restrict_nonsystem_relation_kind', true) IS NOT NULL AS restricts_relation_kinds,
  (SELECT coalesce(json_agg(json_build_object(
      'schema', n.nspname, 'name', c.relname, 'kind', c.relkind, 'oid', c.oid, 'version', {relation_version},
      'rls', c.relrowsecurity,
      'owner_type', (SELECT json_build_array(tn.nspname, t.typname) FROM pg_attribute a
                      JOIN pg_type t ON t.oid = a.atttypid JOIN pg_namespace tn ON tn.oid = t.typnamespace
                      WHERE a.attrelid = c.oid AND a.attname = $1 AND a.attnum > 0
                        AND NOT a.attisdropped),
      'id_type', (SELECT json_build_array(tn.nspname, t.typname) FROM pg_attribute a
                   JOIN pg_type t ON t.oid = a.atttypid JOIN pg_namespace tn ON tn.oid = t.typnamespace
                   WHERE a.attrelid = c.oid AND a.attname = 'id' AND a.attnum > 0 AND NOT a.attisdropped),
      'fks', (SELECT coalesce(json_agg(json_build_object(
                  'cols', (SELECT json_agg(a.attname ORDER BY k.i) FROM unnest(con.conkey) WITH ORDINALITY k(num, i)
                           JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.num),
                  'ref_schema', rn.nspname, 'ref_name', rc.relname,
                  'ref_cols', (SELECT json_agg(a.attname ORDER BY k.i) FROM unnest(con.confkey) WITH ORDINALITY k(num, i)
                               JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.num),
                  'ref_types', (SELECT json_agg(json_build_array(tn.nspname, t.typname) ORDER BY k.i)
                                FROM unnest(con.confkey) WITH ORDINALITY k(num, i)
                                JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.num
                                JOIN pg_type t ON t.oid = a.atttypid
                                JOIN pg_namespace tn ON tn.oid = t.typnamespace))), '[]')
              FROM pg_constraint con JOIN pg_class rc ON rc.oid = con.confrelid
              JOIN pg_namespace rn ON rn.oid = rc.relnamespace
              WHERE con.conrelid = c.oid AND con.contype = 'f'),
      'columns', (SELECT coalesce(json_agg(a.attname ORDER BY a.attnum), '[]') FROM pg_attribute a
                  WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
      'reads', (SELECT coalesce(json_agg(DISTINCT json_build_array(dn.nspname, dc.relname)::text), '[]')
                FROM pg_rewrite r JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid
                JOIN pg_class dc ON dc.oid = d.refobjid AND d.refclassid = 'pg_class'::regclass
                JOIN pg_namespace dn ON dn.oid = dc.relnamespace
                WHERE r.ev_class = c.oid AND dc.oid <> c.oid)
    )), '[]')
   FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
     AND n.nspname NOT IN ('pg_catalog', 'information_schema')
     AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%') AS relations,
  (SELECT coalesce(json_object_agg(t.oid::text, t.typname), '{{}}') FROM pg_type t
    JOIN pg_namespace n ON n.oid = t.typnamespace
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND t.typtype IN ('e', 'd', 'c', 'b', 'r')
      AND n.nspname NOT LIKE 'pg\_toast%') AS types
