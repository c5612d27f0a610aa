"""`retrain-cli retrain JOB`: one retrain under the semaphore."""

from __future__ import annotations

from typing import Annotated

import typer

from retrain_cli.errors import NotAvailableError


def retrain(job: Annotated[str, typer.Argument(help="The job to retrain.")]) -> None:
    """Retrain JOB: train, evaluate, register, gate. (Lands with the retraining issue.)"""
    raise NotAvailableError("`retrain` is not built yet: it lands with the retraining issue (#5)")
