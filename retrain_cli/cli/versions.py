"""`retrain-cli versions`: list, promote and roll back model versions."""

from __future__ import annotations

from typing import Annotated

import typer

from retrain_cli.errors import NotAvailableError

app = typer.Typer(help="List, promote and roll back model versions.", no_args_is_help=True)
Model = Annotated[str, typer.Argument(help="The model's name.")]


@app.command("list")
def list_(model: Model) -> None:
    """List the versions of MODEL. (Lands with the versions issue.)"""
    raise NotAvailableError("`versions list` is not built yet: it lands with issue #8")


@app.command("promote")
def promote(model: Model, version: Annotated[int, typer.Argument(help="Version number.")]) -> None:
    """Make VERSION the active version of MODEL. (Lands with the versions issue.)"""
    raise NotAvailableError("`versions promote` is not built yet: it lands with issue #8")


@app.command("rollback")
def rollback(model: Model) -> None:
    """Return MODEL to its previous champion. (Lands with the versions issue.)"""
    raise NotAvailableError("`versions rollback` is not built yet: it lands with issue #8")
