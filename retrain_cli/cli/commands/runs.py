"""`retrain-cli runs`: the retraining history, one run in full with its log, and cancelling a
running retrain."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from retrain_cli.cli.completion import job_names
from retrain_cli.cli.options import Command, DatabaseUrl, Group, Json, Quiet
from retrain_cli.cli.output import Output, echo, table
from retrain_cli.cli.runtime import open_session
from retrain_cli.core.choices import RunStatus

if TYPE_CHECKING:
    from retrain_cli.training.runs import Run

app = typer.Typer(
    cls=Group,
    help="List retrain runs, show one with its phases and log, cancel a running one.",
    no_args_is_help=True,
)
RunId = Annotated[int, typer.Argument(help="The run's id (`runs list`).", show_default=False)]


@app.command("list", cls=Command)
def list_(
    job: Annotated[
        str | None,
        typer.Option(help="Only this job's runs.", autocompletion=job_names, show_default=False),
    ] = None,
    status: Annotated[
        RunStatus | None, typer.Option(help="Only runs that ended so.", show_default=False)
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(help="Only runs started in this period: 24h, 7d, ...", show_default=False),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many, newest first.")] = 50,
    database_url: DatabaseUrl = None,
    as_json: Json = False,
    quiet: Quiet = False,
) -> None:
    """List retrain runs, newest first.

    Example: retrain-cli runs list --job fraud-lgbm --status failed --since 7d
    """
    from retrain_cli.core.durations import parse_duration, utcnow
    from retrain_cli.training import runs

    try:
        start = utcnow() - parse_duration(since) if since else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--since") from exc
    with open_session(database_url) as (_, session):
        listed = runs.list_runs(session, job=job, status=status, since=start, limit=limit)
    columns = ["run", "job", "status", "trigger", "started", "seconds", "version", "host", "error"]
    rows = [
        [
            r.id,
            r.job,
            r.status,
            r.trigger,
            f"{r.started_at:%Y-%m-%d %H:%M:%S}",
            f"{r.duration_s:.1f}" if r.duration_s is not None else "",
            f"{r.model} v{r.version}" if r.version is not None else "",
            r.host,
            r.error or "",
        ]
        for r in listed
    ]
    Output(as_json, quiet).emit({"runs": listed}, lambda c: c.print(table(None, columns, rows)))


@app.command("show", cls=Command)
def show(
    run_id: RunId,
    log: Annotated[bool, typer.Option("--log", help="Print the run's own log instead.")] = False,
    database_url: DatabaseUrl = None,
    as_json: Json = False,
    quiet: Quiet = False,
) -> None:
    """Show one run: trigger, host, slot, phases with their times, the version it made, the
    gate's reasons, the error; `--log` prints what the run logged (kept on the host that ran it).

    Example: retrain-cli runs show 42 --log
    """
    from retrain_cli.core.errors import NotFoundError
    from retrain_cli.training import runlog, runs

    with open_session(database_url) as (settings, session):
        run = runs.get_run(session, run_id)
    if not log:
        Output(as_json, quiet).emit(run, lambda c: c.print(_describe(run)))
        return
    path = runlog.path_of(settings.logs_dir, run.job, run_id)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFoundError(
            f"run {run_id} has no log here ({path}): it ran on {run.host}, whose "
            "RETRAIN_HOME keeps it"
        ) from None
    Output(as_json, quiet).emit(
        {"run": run_id, "host": run.host, "path": str(path), "log": text},
        lambda c: echo(text.rstrip("\n")),
    )


@app.command("cancel", cls=Command)
def cancel(
    run_id: RunId,
    actor: Annotated[
        str | None, typer.Option(help="Who (default: the OS user).", show_default=False)
    ] = None,
    wait: Annotated[
        float,
        typer.Option(
            help="Seconds to wait for the run to stop (0: ask and return at once); exit 1 if it "
            "has not stopped by then."
        ),
    ] = 0.0,
    database_url: DatabaseUrl = None,
    as_json: Json = False,
    quiet: Quiet = False,
) -> None:
    """Ask a running retrain to stop, on any host: it stops within twice the heartbeat
    interval, training included, registers nothing and is recorded `cancelled` with who asked.

    Example: retrain-cli runs cancel 42 --wait 120
    """
    from retrain_cli.core.durations import utcnow
    from retrain_cli.core.errors import RetrainError
    from retrain_cli.db.session import make_engine
    from retrain_cli.training import runs
    from retrain_cli.versions.registry import os_user

    with open_session(database_url) as (settings, session):
        run = runs.request_cancel(session, run_id, actor or os_user(), utcnow())
    if wait > 0:
        engine = make_engine(settings.database_url)
        try:
            ended = runs.wait_until_finished(engine, run_id, wait)
        finally:
            engine.dispose()
        if ended is None:
            raise RetrainError(f"run {run_id} has not stopped within {wait:g}s")
        run = ended
    Output(as_json, quiet).emit(run, lambda c: c.print(_cancelled(run)))


def _cancelled(run: Run) -> str:
    if run.status == RunStatus.RUNNING:
        return (
            f"run {run.id} of {run.job}: cancel requested by {run.cancelled_by}; it stops at its "
            "next heartbeat"
        )
    return f"run {run.id} of {run.job}: {run.status} ({run.error})"


def _describe(run: Run) -> str:
    lines: list[tuple[str, Any]] = [
        ("run", run.id),
        ("job", run.job),
        ("status", run.status),
        ("trigger", f"{run.trigger}" + (f" ({run.trigger_detail})" if run.trigger_detail else "")),
        ("host", f"{run.host} (pid {run.pid})"),
        ("slot", "" if run.slot is None else run.slot),
        ("scheduled for", run.scheduled_for or ""),
        ("started", run.started_at),
        ("finished", run.finished_at or ""),
        ("seconds", "" if run.duration_s is None else f"{run.duration_s:.1f}"),
        ("phases", ", ".join(f"{name} {s:.1f}s" for name, s in run.phases.items())),
        ("version", f"{run.model} v{run.version}" if run.version is not None else ""),
        ("promoted", "" if run.promoted is None else ("yes" if run.promoted else "no")),
    ]
    if run.gate:
        lines.append(("gate", f"{run.gate.get('decision')}: {'; '.join(run.gate['reasons'])}"))
    if run.cancel_requested_at:
        lines.append(("cancelled by", f"{run.cancelled_by} at {run.cancel_requested_at}"))
    if run.error:
        lines.append(("error", run.error))
    return "\n".join(f"{name:>14}: {value}" for name, value in lines if value != "")
