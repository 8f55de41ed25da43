-- BEFORE UPDATE row triggers of the tables in "rels", with their function's body: a column the body
-- assigns (NEW.updated_at := now()) is kept current by the database. tgtype bits: 1 ROW, 2 BEFORE, 16 UPDATE.
select t.tgrelid as table_oid,
       t.tgname as name,
       p.prosrc as body
from pg_trigger t
join rels r on r.oid = t.tgrelid
join pg_proc p on p.oid = t.tgfoid
where not t.tgisinternal
  and t.tgenabled <> 'D'
  and t.tgtype & 19 = 19
