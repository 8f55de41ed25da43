-- sqlsafe/classify.py: one relation's version, [count, sum of xmin] of relation_xmins.sql's rows
(SELECT json_build_array(count(*), sum(xmin::text::bigint)) FROM (
{xmins}
) x)
