-- role.py: what the role run_scoped_query runs as can do to the user-owned tables
-- $1: the owner column, $2: the role (NULL: the connected one)
SELECT r.rolname AS role, r.rolsuper AS superuser, r.rolbypassrls AS bypass_rls,
  coalesce((
    SELECT json_agg(json_build_object(
             'table', n.nspname || '.' || c.relname,
             'owner', pg_has_role(r.oid, c.relowner, 'USAGE'),
             'write', ARRAY(SELECT p FROM unnest(ARRAY['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) AS p
                            WHERE has_table_privilege(r.oid, c.oid, p)),
             'rls_enabled', c.relrowsecurity, 'rls_forced', c.relforcerowsecurity)
           ORDER BY n.nspname, c.relname)
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg\_%'
      AND (EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = $1
                   AND a.attnum > 0 AND NOT a.attisdropped)
           OR c.oid IN (SELECT k.confrelid FROM pg_constraint k JOIN pg_attribute a
                          ON a.attrelid = k.conrelid AND a.attnum = ANY (k.conkey)
                        WHERE k.contype = 'f' AND a.attname = $1))
  ), '[]'::json) AS tables
FROM pg_roles r WHERE r.rolname = coalesce($2, current_user)
