"""The HTTP API layer: authentication, routes and error mapping."""
