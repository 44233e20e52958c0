"""What the gateway keeps: the SQLite store, thread heads, agents and auth tokens (a leaf)."""
