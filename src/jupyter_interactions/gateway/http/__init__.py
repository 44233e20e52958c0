"""The HTTP layer: routes, handlers, auth shells, SSE and error mapping (the only tornado user)."""
