"""Scheduling: when a job is due and why (pure), and `jobs due` starting the due runs."""
