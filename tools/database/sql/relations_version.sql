-- sqlsafe/classify.py: the versions of several relations added up, as text "count:sum"
(SELECT count(*) || ':' || coalesce(sum(xmin::text::bigint), 0) FROM (
{xmins}
) x)
