-- sqlsafe/classify.py: the catalog rows that describe the relations {oids} selects ("= c.oid", "= ANY(...)")
SELECT xmin FROM pg_catalog.pg_class WHERE oid {oids}
    UNION ALL SELECT xmin FROM pg_catalog.pg_attribute WHERE attrelid {oids} AND attnum > 0
    UNION ALL SELECT xmin FROM pg_catalog.pg_constraint WHERE conrelid {oids}
    UNION ALL SELECT xmin FROM pg_catalog.pg_rewrite WHERE ev_class {oids}
