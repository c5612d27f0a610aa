"""`retrain-cli report`: a static HTML site of every model's history."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from retrain_cli.cli.completion import model_names
from retrain_cli.cli.options import DatabaseUrl, Json, Now, Quiet
from retrain_cli.cli.output import Output
from retrain_cli.cli.runtime import open_session
from retrain_cli.core import paths
from retrain_cli.core.durations import parse_duration, utcnow


def report(
    out: Annotated[
        str | None,
        typer.Option(
            "--out",
            help="The report's directory, or a store's prefix such as s3://bucket/report/ "
            "(default: $RETRAIN_HOME/report).",
            metavar="DIR",
            show_default=False,
        ),
    ] = None,
    since: Annotated[str, typer.Option(help="The period drawn: 24h, 30d, 90d, ...")] = "90d",
    models: Annotated[
        list[str] | None,
        typer.Option(
            "--model",
            help="Only this model (repeatable); default: every model.",
            metavar="MODEL",
            autocompletion=model_names,
            show_default=False,
        ),
    ] = None,
    now: Now = None,
    database_url: DatabaseUrl = None,
    as_json: Json = False,
    quiet: Quiet = False,
) -> None:
    """Write a static site (index.html and one page per model, no script, nothing fetched):
    the primary metric, drift share and a per-feature drift heatmap over time with every
    promotion and rollback marked, the runs as a timeline with their errors, the version
    lineage; the overview orders models by their open alerts.

    Example: retrain-cli report --out /var/www/retrain --since 30d
    """
    from retrain_cli.db.queries import registry_id
    from retrain_cli.ops.report import write_report
    from retrain_cli.store import objects
    from retrain_cli.training.slots import file_slots

    try:
        period = parse_duration(since)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--since") from exc
    with open_session(database_url) as (settings, session):
        at = now or utcnow()
        target: Path | str
        if out is not None and objects.is_url(out):
            target = out  # a store's prefix is one database's, as a home is
            objects.claim_prefix(out, registry_id(session), settings.safe_database_url)
        else:
            target = (Path(out) if out else paths.report_dir(settings.home)).expanduser().absolute()
        written = write_report(
            session, target, at, at - period, models or [], file_slots(settings).slots_in_use()
        )
    document = {
        "index": str(written.index),
        "pages": {m: str(p) for m, p in written.pages.items()},
        "alerts": written.alerts,
    }
    Output(as_json, quiet).emit(document, lambda c: _render(c, written))


def _render(console: Any, written: Any) -> None:
    urgent = sum(bool(a) for a in written.alerts.values())
    from retrain_cli.store.objects import is_url

    index = written.index if is_url(written.index) else Path(written.index).as_uri()
    console.print(
        f"report of {len(written.pages)} models ({urgent} with open alerts): open {index}",
        soft_wrap=True,
    )
