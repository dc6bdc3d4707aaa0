"""The job runtime: start a job's processes in its box, track them exactly, one way to
signal and end them. Knows nothing of engines, clusters or the database."""
