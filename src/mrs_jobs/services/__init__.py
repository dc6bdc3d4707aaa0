"""Use cases. Each owns its transaction; none imports the web framework."""
