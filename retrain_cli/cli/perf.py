"""`retrain-cli perf`: model performance on scored predictions."""

from __future__ import annotations

import typer

from retrain_cli.errors import NotAvailableError

app = typer.Typer(help="Check model performance.", no_args_is_help=True)


@app.command("check")
def check() -> None:
    """Score predictions whose outcomes arrived. (Lands with the performance issue.)"""
    raise NotAvailableError("`perf check` is not built yet: it lands with issue #4")
