"""Layer 1: PostgreSQL itself: the live catalog reader, DDL rendering, type names and SQL expressions."""
