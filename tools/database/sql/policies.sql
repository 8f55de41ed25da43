-- Row-level security policies of the tables in "rels". polroles holds 0 for PUBLIC.
-- polcmd: r SELECT, a INSERT, w UPDATE, d DELETE, * ALL.
select p.polrelid as table_oid,
       p.polname as name,
       p.polcmd as command,
       p.polpermissive as permissive,
       (select json_agg(coalesce(ro.rolname, 'public') order by ro.rolname nulls first)
          from unnest(p.polroles) as pr(oid)
          left join pg_roles ro on ro.oid = pr.oid) as roles,
       pg_get_expr(p.polqual, p.polrelid, true) as using_expr,
       pg_get_expr(p.polwithcheck, p.polrelid, true) as check_expr
from pg_policy p
join rels r on r.oid = p.polrelid
