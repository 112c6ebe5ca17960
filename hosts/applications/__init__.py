"""Applications: multi-container templates from Compose files, placed across a project's hosts."""
