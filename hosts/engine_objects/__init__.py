"""What an engine holds besides containers: its volumes and networks (issue 17), listed with the
containers that use them, created, removed when unused, pruned."""
