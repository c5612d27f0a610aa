"""`retrain-cli stats`: pipeline statistics for operators."""

from __future__ import annotations

from retrain_cli.errors import NotAvailableError


def stats() -> None:
    """Runs, success rates, durations, versions and alerts per job. (Lands with issue #8.)"""
    raise NotAvailableError("`stats` is not built yet: it lands with the versions issue (#8)")
