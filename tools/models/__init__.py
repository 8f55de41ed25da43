"""Layer 2: SQLModel models: read in a child process (the project's code never runs in the server), and
generated as code."""
