-- sqlsafe/resolved.py: $1: the safe extensions, $2: the view names. For each view: the analysed query
-- printed back, and the objects it depends on that a query may not use (pinned built-ins are never in
-- pg_depend).
SELECT v.name, pg_catalog.pg_get_viewdef(c.oid),
  (SELECT coalesce(pg_catalog.json_agg(DISTINCT pg_catalog.pg_describe_object(d.refclassid, d.refobjid, 0)),
                   '[]')
     FROM pg_catalog.pg_depend d
     JOIN pg_catalog.pg_rewrite r ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.objid = r.oid
    WHERE r.ev_class = c.oid
      AND ((d.refclassid IN ('pg_catalog.pg_proc'::pg_catalog.regclass, 'pg_catalog.pg_operator'::pg_catalog.regclass)
            AND NOT EXISTS (
              SELECT 1 FROM pg_catalog.pg_depend e
                JOIN pg_catalog.pg_extension x ON x.oid = e.refobjid
               WHERE e.classid = d.refclassid AND e.objid = d.refobjid AND e.deptype = 'e'
                 AND e.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass AND x.extname = ANY($1)))
        OR (d.refclassid = 'pg_catalog.pg_type'::pg_catalog.regclass AND EXISTS (
              SELECT 1 FROM pg_catalog.pg_constraint k
                JOIN pg_catalog.pg_depend kd ON kd.classid = 'pg_catalog.pg_constraint'::pg_catalog.regclass
                 AND kd.objid = k.oid AND kd.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass
               WHERE k.contypid = d.refobjid))))
FROM pg_catalog.unnest($2::text[]) WITH ORDINALITY AS v(name, n)
JOIN pg_catalog.pg_class c ON c.oid = pg_catalog.to_regclass('pg_temp.' || v.name)
ORDER BY v.n
