-- propose_table/proof.py: which of the qualified table names $1 (text[]) exist
SELECT name, to_regclass(name) IS NOT NULL FROM unnest($1::text[]) AS name
