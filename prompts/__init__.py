"""schema-architect: prompts."""
