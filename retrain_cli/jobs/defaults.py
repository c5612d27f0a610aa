"""Job defaults that paths without the typed spec need (`jobs due` reads 10,000 jobs' columns,
not their validated specs); the spec takes them from here."""

from __future__ import annotations

RETRY_BACKOFF_S = 1800  # a job whose last run failed waits this long before it is due again
