"""Options shared by every command, declared once with `Annotated`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from retrain_cli.durations import parse_instant

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="SQLAlchemy URL; overrides RETRAIN_DATABASE_URL and the config file.",
        show_default=False,
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing on success (for cron).")]


def parse_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_instant(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


Now = Annotated[
    datetime | None,
    typer.Option(
        "--now",
        help="Evaluate at this ISO 8601 time instead of the current time.",
        parser=parse_time,
        metavar="ISO8601",
        show_default=False,
    ),
]


AD_HOC = "Ad hoc (no job)"
Every = Annotated[bool, typer.Option("--all", help="Check every enabled job.")]
AdHocModel = Annotated[
    str | None, typer.Option("--model", help="Model name.", rich_help_panel=AD_HOC)
]
