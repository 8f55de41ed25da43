-- explain_indexes (run_script, %s quoted in client-side: the CREATE INDEX): a hypothetical index, its
-- estimated size and the name hypopg gave it
SELECT hypopg_relation_size(indexrelid), indexname FROM hypopg_create_index(%s)
