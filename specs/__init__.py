"""schema-architect: specs."""
