"""Google's service: forwarding interactions there, and its environments' files (a leaf)."""
