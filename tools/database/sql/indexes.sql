-- Indexes of the tables in "rels", valid or not (a failed CREATE INDEX CONCURRENTLY leaves an
-- invalid one behind, and that is worth reporting). Key columns come first in indkey, INCLUDE columns
-- after indnkeyatts. indkey 0 is an expression; pg_get_indexdef(oid, n, true) prints just column n.
-- indoption bits: 1 = DESC, 2 = NULLS FIRST. "constraint_name" is the constraint the index backs.
select i.indrelid as table_oid,
       ic.relname as name,
       am.amname as method,
       i.indisunique as is_unique,
       i.indisprimary as is_primary,
       i.indisvalid as is_valid,
       i.indnkeyatts as key_count,
       pg_get_expr(i.indpred, i.indrelid, true) as predicate,
       con.conname as constraint_name,
       (select json_agg(json_build_object(
                   'name', coalesce(a.attname, pg_get_indexdef(i.indexrelid, k.n::int, true)),
                   'expression', k.attnum = 0,
                   'option', i.indoption[k.n - 1])
                order by k.n)
          from unnest(i.indkey::int2[]) with ordinality k(attnum, n)
          left join pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum and k.attnum > 0
       ) as columns
from pg_index i
join rels r on r.oid = i.indrelid
join pg_class ic on ic.oid = i.indexrelid
join pg_am am on am.oid = ic.relam
left join pg_constraint con
       on con.conindid = i.indexrelid and con.conrelid = i.indrelid and con.contype in ('p', 'u', 'x')
where i.indislive
