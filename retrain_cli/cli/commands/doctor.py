"""`retrain-cli doctor`: is this host set up for cron to run retrain-cli?"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from retrain_cli.cli.options import Json
from retrain_cli.cli.output import Output


def doctor(
    cron_file: Annotated[
        Path,
        typer.Option(
            "--cron-file",
            help="The installed cron file whose user, PATH and variables cron will use.",
            metavar="FILE",
        ),
    ] = Path("/etc/cron.d/retrain-cli"),
    as_json: Json = False,
) -> None:
    """Check the set-up as cron will run it: the cron file, its user, PATH, the database and
    its schema, RETRAIN_HOME, the artifacts directory and the clock; one line each.

    Exit 0: ready; 1: something to fix (each line says how).

    Example: retrain-cli doctor --cron-file /etc/cron.d/retrain-cli
    """
    from retrain_cli.ops.doctor import diagnose

    found = diagnose(cron_file)
    Output(as_json, False).emit(
        {"healthy": found.healthy, "findings": found.findings}, lambda c: _render(c, found)
    )
    if not found.healthy:
        raise typer.Exit(1)


def _render(console: Any, found: Any) -> None:
    for finding in found.findings:
        mark = "ok  " if finding.ok else "FAIL"
        console.print(f"{mark}  {finding.check}: {finding.detail}", markup=False, soft_wrap=True)
