"""schema-architect: agents."""
