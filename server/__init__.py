"""schema-architect: server."""
