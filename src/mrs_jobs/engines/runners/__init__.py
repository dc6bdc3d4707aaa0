"""Small job processes of our own (SQL client, DistCp), run by the shim like any engine."""
