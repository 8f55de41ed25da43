-- run_scoped_query: arguments of scoped_context.sql's concat() for a call that, by the cached map,
-- reads only plain tables without row security, so that nothing but the built-ins sqlsafe allows can
-- run in it (its settings and query are then one implicit transaction, with no reset after it). A
-- relation read that has since become a view fails the query before the view's code runs; a table that
-- has since gained row security fails it rather than run a policy. The call then reruns on a fresh map.
-- (Foreign tables stay readable: a partition or inheritance child may be one, and a foreign data
-- wrapper is C code a superuser installed, not SQL a table owner wrote.)
, set_config('row_security', 'off', true),
  set_config('restrict_nonsystem_relation_kind', 'view', true)
