"""`retrain-cli retrain JOB`: one retrain under the semaphore."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import typer

from retrain_cli.cli.completion import job_names
from retrain_cli.cli.options import DatabaseUrl, Json, Quiet, parse_time
from retrain_cli.cli.output import Output
from retrain_cli.core.choices import RunStatus, Trigger
from retrain_cli.core.errors import BusyError

if TYPE_CHECKING:
    from retrain_cli.training.runner import RunResult


def retrain(
    job: Annotated[
        str,
        typer.Argument(help="The job to retrain.", show_default=False, autocompletion=job_names),
    ],
    trigger: Annotated[Trigger, typer.Option(help="Why this run.")] = Trigger.MANUAL,
    trigger_detail: Annotated[
        str | None, typer.Option(help="Free text stored with the run.", show_default=False)
    ] = None,
    wait_timeout: Annotated[
        float, typer.Option(help="Seconds to wait for a free slot (0: don't wait).")
    ] = 0.0,
    scheduled_for: Annotated[
        datetime | None,
        typer.Option(
            help="The cron fire time this run serves (set by `jobs due --run`).",
            parser=parse_time,
            metavar="ISO8601",
            show_default=False,
        ),
    ] = None,
    no_promote: Annotated[
        bool, typer.Option("--no-promote", help="Register the new version, never promote it.")
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Train even when the data and hyperparameters equal the active version's.",
        ),
    ] = False,
    database_url: DatabaseUrl = None,
    as_json: Json = False,
    quiet: Quiet = False,
) -> None:
    """Retrain JOB: train, evaluate against the champion, register, promote if better.

    Exit 0: succeeded; 1: failed (recorded); 75: no slot free or the job is already running.

    Example: retrain-cli retrain fraud-lgbm --trigger manual --trigger-detail "new labels"
    """
    from retrain_cli.cli.runtime import claimed_engine, export_metrics, notify, publish_serving
    from retrain_cli.cluster.placement import cluster_placement
    from retrain_cli.core.durations import utcnow
    from retrain_cli.core.settings import load_settings
    from retrain_cli.training.runner import Hooks, RetrainRequest, RunFailed
    from retrain_cli.training.runner import retrain as run

    settings = load_settings(database_url)
    engine = claimed_engine(settings)
    output = Output(as_json, quiet)
    request = RetrainRequest(
        job, trigger, trigger_detail, wait_timeout, not no_promote, scheduled_for, force
    )
    try:
        with _progress(quiet or as_json) as on_progress, cluster_placement(settings) as placement:
            hooks = Hooks(on_progress=on_progress, placement=placement)
            result = run(engine, settings, request, hooks)
    except BusyError as exc:
        output.emit(
            {"job": job, "status": RunStatus.SKIPPED, "trigger": trigger, "error": str(exc)},
            lambda c: None,
        )
        raise
    except RunFailed as failed:
        notify(settings, failed.result.events(utcnow()))
        output.emit(failed.result, lambda c: None)
        raise
    else:
        if result.version and result.gate and result.gate.changes_serving:
            publish_serving(engine, settings, [result.version.model])
    finally:
        export_metrics(engine, settings)
        engine.dispose()
    notify(settings, result.events(utcnow()))
    output.emit(result, lambda c: c.print(_describe(result)))


def _describe(result: RunResult) -> str:
    if result.status == RunStatus.SKIPPED:
        return f"{result.job}: skipped, {result.error}"
    version, gate = result.version, result.gate
    assert version is not None and gate is not None  # a run that succeeded registered one
    verdict = {"promote": "promoted", "candidate": "rollout candidate"}.get(
        gate.decision, "not promoted"
    )
    reasons = "; ".join(gate.reasons)
    steps = ", ".join(f"{name} {seconds:.1f}s" for name, seconds in result.phases.items())
    where = " on the Dask cluster" if result.compute == "dask" else ""
    return (
        f"{result.job}: registered {version.model} v{version.version} "
        f"({verdict}: {reasons}) in {result.duration_s:.1f}s{where} ({steps})"
    )


@contextmanager
def _progress(silent: bool) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr when it is a terminal; otherwise nothing."""
    import sys

    if silent or not sys.stderr.isatty():
        yield lambda done, total: None
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("training", total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)
