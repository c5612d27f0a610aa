"""Data a job reads: sources (Parquet, CSV, SQL), record batches and partitions, prediction windows,
training rows and their split, a window's columns, its profile and a window counted against one."""
