-- one expression of ours (a catalog or relations version, the reset) as a statement of its own: {value}
SELECT {value}
