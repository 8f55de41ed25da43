"""Layer 2: the spec file: the lenient reader, the canonical writer, safe file access, lint rules, the ER
diagram and query patterns."""
