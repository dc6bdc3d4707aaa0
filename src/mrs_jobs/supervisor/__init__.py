"""Claims queued jobs, launches and kills engine process groups, recovers after a crash."""
