"""`retrain-cli jobs due`: the scheduler's tick (what is due, and why; with --run, start it), a
command of the `jobs` group in a module of its own."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer

from retrain_cli.cli.options import DatabaseUrl, Json, Now, Quiet
from retrain_cli.cli.output import Output, echo, minutes, table
from retrain_cli.cli.runtime import notify, open_session
from retrain_cli.core.durations import utcnow


def due(
    now: Now = None,
    run: Annotated[
        bool, typer.Option("--run", help="Start due jobs, at most one per free slot.")
    ] = False,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait",
            help="With --run: return once the started retrains have ended (a container's "
            "processes end with it); exit 1 if one failed.",
        ),
    ] = False,
    database_url: DatabaseUrl = None,
    as_json: Json = False,
    quiet: Quiet = False,
) -> None:
    """List the jobs due at NOW and why; with --run, start them as detached retrains.

    Example: retrain-cli jobs due --run --quiet   (what cron runs every five minutes)
    """
    from retrain_cli.scheduling.dispatch import due_jobs, start_due, wait_for

    if wait and not run:
        raise typer.BadParameter("--wait needs --run", param_hint="--wait")
    from retrain_cli.versions.rollouts.moves import advance_all
    from retrain_cli.versions.serving import recheck

    at = now or utcnow()
    with open_session(database_url) as (settings, session):
        moves, failures = advance_all(session, at)
        recheck(session, settings.home, at, settings.serving_store)
        report = due_jobs(session, at, settings.max_wait_s)
    report.rollouts, report.errors = moves, [*failures, *report.errors]
    notify(settings, [event for move in moves for event in move.events()])
    if run:
        processes = start_due(report, settings, database_url)
        if wait:
            wait_for(report, processes)
    Output(as_json, quiet).emit(_due_document(report), lambda c: _render_due(c, report))
    for failure in report.errors:
        echo(f"Error: {failure.job}: {failure.error}", err=True)
    failed = [s for s in report.started if s.get("exit_code") == 1]
    for started in failed:
        echo(f"Error: {started['job']}: the retrain failed (its log: {started['log']})", err=True)
    if report.errors or failed:
        raise typer.Exit(1)


def _due_document(report: Any) -> dict[str, Any]:
    def entry(v: Any) -> dict[str, Any]:
        return {
            "job": v.job,
            "model": v.model,
            "priority": v.priority,
            "reasons": [{"trigger": r.trigger, "detail": r.detail} for r in v.reasons],
            "due_since": v.due_since,
            "last_run_at": v.last_run_at,
            "next_fire": v.next_fire,
        }

    return {
        "now": report.now,
        "due": [entry(v) for v in report.due],
        "running": [{"job": v.job, "model": v.model, "detail": v.detail} for v in report.running],
        "backoff": [{"job": v.job, "model": v.model, "detail": v.detail} for v in report.backoff],
        "not_due": report.not_due,
        "started": report.started,
        "waiting": report.waiting,
        "rollouts": report.rollouts,
        "errors": report.errors,
    }


def _render_due(console: Any, report: Any) -> None:
    rows = [
        (
            v.job,
            v.model,
            v.priority,
            "; ".join(f"{r.trigger}: {r.detail}" for r in v.reasons),
            minutes(_seconds_since(report.now, v.due_since)),
            v.last_run_at,
            v.next_fire,
        )
        for v in report.due
    ]
    rows += [
        (
            v.job,
            v.model,
            v.priority,
            v.state + ": " + (v.detail or ""),
            None,
            v.last_run_at,
            v.next_fire,
        )
        for v in [*report.running, *report.backoff]
    ]
    console.print(
        f"{len(report.due)} due, {len(report.running)} running, "
        f"{len(report.backoff)} in retry backoff, {report.not_due} not due "
        f"at {report.now:%Y-%m-%d %H:%M:%SZ}"
    )
    if rows:
        console.print(
            table(
                None, ["job", "model", "priority", "why", "due for", "last run", "next fire"], rows
            )
        )
    for started in report.started:
        ended = f", exit {started['exit_code']}" if "exit_code" in started else ""
        console.print(
            f"started {started['job']} ({started['trigger']}), pid {started['pid']}, "
            f"log {started['log']}{ended}"
        )
    for waiting in report.waiting:
        console.print(
            f"waits {waiting['job']} (priority {waiting['priority']}, due for "
            f"{minutes(waiting['waited_s'])}): {waiting['why']}"
        )
    for move in report.rollouts:
        console.print(move.describe(), markup=False)


def _seconds_since(now: datetime, since: datetime | None) -> float | None:
    return None if since is None else (now - since).total_seconds()
