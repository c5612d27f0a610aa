"""Options shared by every command, declared once with `Annotated`."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from retrain_cli.cli.completion import job_names
from retrain_cli.core.durations import parse_instant


def _plain(params: list[Any]) -> None:
    """Help that reads like git's or kubectl's: a value in capitals (`--report REPORT`, `JOB`),
    a flag with no `<bool>` label."""
    for param in params:
        descriptor = getattr(param, "type_descriptor", None)
        if param.metavar is not None or not param.name:
            continue
        choices = getattr(descriptor, "choices", None)
        if getattr(descriptor, "is_choice", False) and choices:
            # a closed set keeps its list, spaced so that a narrow help wraps between choices
            param.metavar = " | ".join(str(getattr(c, "value", c)) for c in choices)
        elif isinstance(param, TyperOption) and param.is_flag:
            param.metavar = ""
        elif isinstance(param, TyperArgument | TyperOption):
            param.metavar = param.name.upper()


class Command(TyperCommand):
    """Every command: plain metavars, and `JOB` rather than `{JOB}` in its usage line."""

    def get_params(self, ctx: Any) -> list[Any]:
        params: list[Any] = super().get_params(ctx)
        _plain(params)
        return params

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces: list[str] = super().collect_usage_pieces(ctx)
        return [re.sub(r"^\{(.*)\}(\.\.\.)?$", r"\1\2", piece) for piece in pieces]


class Group(TyperGroup):
    """Every command group: plain metavars."""

    def get_params(self, ctx: Any) -> list[Any]:
        params: list[Any] = super().get_params(ctx)
        _plain(params)
        return params


DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="SQLAlchemy URL; overrides RETRAIN_DATABASE_URL and the config file.",
        metavar="URL",
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


JobNames = Annotated[
    list[str] | None, typer.Argument(help="Jobs to check.", autocompletion=job_names)
]

AD_HOC = "Ad hoc (no job)"
Every = Annotated[bool, typer.Option("--all", help="Check every enabled job.")]
AdHocModel = Annotated[
    str | None, typer.Option("--model", help="Model name.", rich_help_panel=AD_HOC)
]
