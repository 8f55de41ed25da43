-- one expression of ours (a catalog or relations version) as a statement of its own: {value}
SELECT {value}
