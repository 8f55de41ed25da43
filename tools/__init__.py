"""schema-architect: tools."""
