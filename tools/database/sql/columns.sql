-- Columns of the tables in "rels", in attnum order.
-- format_type keeps length/precision (character varying(200), numeric(10,2)); pretty pg_get_expr gives
-- defaults as people write them. serial_default is true when the default is nextval() of a sequence
-- owned by this very column (deptype 'a'): that is what SERIAL leaves behind, so the reader reports
-- identity "serial" instead of a default. Identity sequences are deptype 'i' and never match.
select a.attrelid as table_oid,
       a.attnum,
       a.attname as name,
       format_type(a.atttypid, a.atttypmod) as type,
       a.atttypid as type_oid,
       a.attnotnull as not_null,
       pg_get_expr(ad.adbin, ad.adrelid, true) as default_expr,
       a.attidentity as identity,
       a.attgenerated as generated,
       d.description,
       exists (
           select 1
           from pg_depend dep
           join pg_class s on s.oid = dep.objid and s.relkind = 'S'
           where dep.classid = 'pg_class'::regclass
             and dep.refclassid = 'pg_class'::regclass
             and dep.refobjid = a.attrelid
             and dep.refobjsubid = a.attnum
             and dep.deptype = 'a'
             and pg_get_expr(ad.adbin, ad.adrelid, true)
                 = 'nextval(' || quote_literal(s.oid::regclass::text) || '::regclass)'
       ) as serial_default
from pg_attribute a
join rels r on r.oid = a.attrelid
left join pg_attrdef ad on ad.adrelid = a.attrelid and ad.adnum = a.attnum
left join pg_description d
       on d.objoid = a.attrelid and d.classoid = 'pg_class'::regclass and d.objsubid = a.attnum
where a.attnum > 0 and not a.attisdropped
