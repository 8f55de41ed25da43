-- Enum types with their labels in sort order: those defined in the requested schemas (unless an
-- extension owns them) and any other enum a column of the tables in "rels" uses.
-- Parameter: schemas (text[]), bound as a placeholder.
select t.oid,
       n.nspname as schema_name,
       t.typname as name,
       (select json_agg(e.enumlabel order by e.enumsortorder)
          from pg_enum e where e.enumtypid = t.oid) as labels
from pg_type t
join pg_namespace n on n.oid = t.typnamespace
where t.typtype = 'e'
  and ((n.nspname = any($1)
        and not exists (select 1 from pg_depend e
                        where e.classid = 'pg_type'::regclass and e.objid = t.oid and e.deptype = 'e'))
       or t.oid in (select a.atttypid from pg_attribute a join rels r on r.oid = a.attrelid
                    where a.attnum > 0 and not a.attisdropped))
