-- Size and usage of every index in the requested schemas, for explain_indexes.
-- reltuples is -1 for a table never vacuumed or analyzed (PostgreSQL 14+): reported as null.
-- stats_reset is per database (pg_stat_all_indexes has no reset time of its own).
-- Lines marked "pg>=16" are dropped on older servers (last_idx_scan arrived in 16).
-- Parameter: schemas (text[]), bound as a placeholder.
select s.schemaname as schema_name,
       s.relname as table_name,
       s.indexrelname as name,
       pg_relation_size(s.indexrelid) as size_bytes,
       s.idx_scan,
       s.idx_tup_read,
       s.idx_tup_fetch,
       s.last_idx_scan, -- pg>=16
       nullif(t.reltuples, -1) as table_rows,
       db.stats_reset
from pg_stat_all_indexes s
join pg_class t on t.oid = s.relid
left join pg_stat_database db on db.datname = current_database()
where s.schemaname = any($1)
