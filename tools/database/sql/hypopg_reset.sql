-- explain_indexes: hypopg's indexes live in the session, not the transaction: dropped before ROLLBACK
SELECT hypopg_reset()
