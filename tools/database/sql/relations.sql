-- Tables to read: ordinary and partitioned tables in the requested schemas.
-- Partitions are left out (they repeat their parent's definition) and so are tables that belong to an
-- extension (PostGIS's spatial_ref_sys and the like: nobody models them).
-- In the combined catalog query this is the CTE "rels"; every other catalog file joins it by oid.
-- Parameter: schemas (text[]), bound as a placeholder.
select c.oid,
       n.nspname as schema_name,
       c.relname as name,
       c.relkind as kind,
       c.relrowsecurity as rls_enabled,
       c.relforcerowsecurity as rls_forced,
       d.description
from pg_class c
join pg_namespace n on n.oid = c.relnamespace
left join pg_description d
       on d.objoid = c.oid and d.classoid = 'pg_class'::regclass and d.objsubid = 0
where c.relkind in ('r', 'p')
  and not c.relispartition
  and n.nspname = any($1)
  and not exists (
      select 1 from pg_depend e
      where e.classid = 'pg_class'::regclass and e.objid = c.oid and e.deptype = 'e'
  )
