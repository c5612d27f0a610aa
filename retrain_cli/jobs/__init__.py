"""Jobs: the typed job spec and its sections, job files, and the jobs table with defaults per
type."""
