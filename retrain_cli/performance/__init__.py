"""Performance: one check of a job's scored predictions, estimates before the labels arrive (CBPE),
and change points in the per-row loss."""
