-- run_scoped_query: an argument of scoped_context.sql's concat(), a division by zero at run time only
-- when the catalog moved since the map was read (the query then never runs).
-- {catalog_version}: catalog_version.sql; {number}: the parameter holding the map's version.
, 1 / (CASE WHEN {catalog_version} = ${number} THEN 1 ELSE 0 END)
