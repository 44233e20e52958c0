"""Environments: their records and files, uploads, the live sandboxes and where a run works."""
