-- Primary keys, uniques, foreign keys, checks and exclusions of the tables in "rels".
-- PostgreSQL 18 also stores NOT NULL as contype 'n': left out here, attnotnull says it already.
-- conparentid <> 0 rows are the clones PostgreSQL adds for FKs to partitioned tables: left out.
-- Key columns keep their constraint order (unnest ... with ordinality).
select con.conrelid as table_oid,
       con.conname as name,
       con.contype as kind,
       (select json_agg(a.attname order by k.n)
          from unnest(con.conkey) with ordinality k(attnum, n)
          join pg_attribute a on a.attrelid = con.conrelid and a.attnum = k.attnum) as columns,
       fn.nspname as ref_schema,
       fc.relname as ref_table,
       (select json_agg(a.attname order by k.n)
          from unnest(con.confkey) with ordinality k(attnum, n)
          join pg_attribute a on a.attrelid = con.confrelid and a.attnum = k.attnum) as ref_columns,
       nullif(con.confdeltype, ' ') as on_delete,
       nullif(con.confupdtype, ' ') as on_update,
       case when con.contype = 'c' then pg_get_expr(con.conbin, con.conrelid, true) end as expression,
       con.convalidated as validated,
       con.condeferrable as deferrable
from pg_constraint con
join rels r on r.oid = con.conrelid
left join pg_class fc on fc.oid = con.confrelid
left join pg_namespace fn on fn.oid = fc.relnamespace
where con.contype in ('p', 'u', 'f', 'c', 'x')
  and con.conparentid = 0
