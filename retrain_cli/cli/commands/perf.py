"""`retrain-cli perf check`: model performance on scored predictions whose outcomes arrived."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from retrain_cli.cli.options import (
    AD_HOC,
    AdHocModel,
    Command,
    DatabaseUrl,
    Every,
    Group,
    JobNames,
    Json,
    Now,
    Quiet,
)
from retrain_cli.cli.output import Output, echo, finish_checks, table
from retrain_cli.cli.runtime import notify, open_session
from retrain_cli.core.choices import Metric, better
from retrain_cli.core.durations import parse_duration, utcnow
from retrain_cli.core.errors import UsageError

if TYPE_CHECKING:
    from rich.console import Console

    from retrain_cli.performance.result import PerfResult

app = typer.Typer(cls=Group, help="Check model performance.", no_args_is_help=True)


@app.command("check", cls=Command)
def check(
    jobs: JobNames = None,
    every: Every = False,
    model: AdHocModel = None,
    predictions: Annotated[
        Path | None,
        typer.Option(help="File with ts, y_true, y_score[, return].", rich_help_panel=AD_HOC),
    ] = None,
    threshold: Annotated[
        float, typer.Option(help="Alarm below this primary metric.", rich_help_panel=AD_HOC)
    ] = 0.80,
    primary_metric: Annotated[
        Metric, typer.Option(help="The metric judged.", rich_help_panel=AD_HOC)
    ] = Metric.AUC,
    periods_per_year: Annotated[
        float, typer.Option(help="Annualisation of trading metrics.", rich_help_panel=AD_HOC)
    ] = 252.0,
    window: Annotated[
        str | None, typer.Option(help="Only the newest rows, e.g. 30d.", show_default=False)
    ] = None,
    now: Now = None,
    database_url: DatabaseUrl = None,
    as_json: Json = False,
    quiet: Quiet = False,
) -> None:
    """Compute, store and judge performance metrics on predictions with outcomes.

    Exit 0: healthy or unknown; 3: degraded; 1: an error (other jobs of --all still run).

    Example: retrain-cli perf check fraud-lgbm --json
    """
    from retrain_cli.jobs.sections import PerfSettings
    from retrain_cli.jobs.store import select_jobs
    from retrain_cli.performance import check as monitor

    at = now or utcnow()
    window_s = _seconds(window)
    with open_session(database_url) as (settings, session):
        if model is not None:
            if jobs or every or predictions is None:
                raise UsageError("the ad hoc form needs --model and --predictions only")
            perf_settings = PerfSettings(
                primary_metric=primary_metric,
                threshold=threshold,
                periods_per_year=periods_per_year,
                window=window_s,
            )
            outcomes: list[Any] = [
                monitor.check_file(session, model, predictions, perf_settings, at)
            ]
        else:
            selected = select_jobs(session, jobs or [], every)
            if window_s is not None:
                selected = [_with_window(job, window_s) for job in selected]
            outcomes = monitor.check_jobs(session, selected, at, every_enabled=every)
    nothing = "no enabled job has data.predictions to check"
    _finish(settings, outcomes, Output(as_json, quiet), "performance degraded", nothing)


@app.command("estimate", cls=Command)
def estimate(
    jobs: JobNames = None,
    every: Annotated[
        bool, typer.Option("--all", help="Every enabled job with performance.estimate.")
    ] = False,
    now: Now = None,
    database_url: DatabaseUrl = None,
    as_json: Json = False,
    quiet: Quiet = False,
) -> None:
    """Estimate, store and judge the performance of predictions whose outcomes have not
    arrived (CBPE: the scores calibrated on the labelled rows; docs/performance.md).

    Exit 0: healthy or unknown; 3: estimated degraded; 1: an error.

    Example: retrain-cli perf estimate fraud-lgbm --json
    """
    from retrain_cli.jobs.store import select_jobs
    from retrain_cli.performance import check as monitor

    at = now or utcnow()
    with open_session(database_url) as (settings, session):
        selected = select_jobs(session, jobs or [], every)
        outcomes = monitor.estimate_jobs(session, selected, at, every_enabled=every)
    nothing = "no enabled job has performance.estimate and data.predictions"
    _finish(settings, outcomes, Output(as_json, quiet), "estimated performance degraded", nothing)


def _finish(settings: Any, outcomes: list[Any], output: Output, what: str, nothing: str) -> None:
    """Notify what the recorded results found, print them, and exit as `finish_checks` says.
    A rollout the results moved is said on stderr in a quiet run too: what is served changed."""
    from retrain_cli.jobs.store import JobFailure

    results = [o for o in outcomes if not isinstance(o, JobFailure)]
    notify(settings, [event for r in results for event in r.events()])
    if output.quiet:
        for move in (move for r in results for move in r.moves):
            echo(move.describe(), err=True)
    finish_checks(
        output, outcomes, _render, flagged=lambda r: r.flagged, what=what, nothing=nothing
    )


def _seconds(window: str | None) -> int | None:
    if window is None:
        return None
    try:
        return int(parse_duration(window).total_seconds())
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--window") from exc


def _with_window(job: Any, window_s: int) -> Any:
    performance = {**job.document.get("performance", {}), "window": window_s}
    return replace(job, document={**job.document, "performance": performance})


VERDICT = {True: "[red]DEGRADED[/]", False: "[green]healthy[/]", None: "[yellow]unknown[/]"}


def _render(console: Console, results: list[PerfResult]) -> None:
    for r in results:
        version = f"v{r.version}" if r.version is not None else "no active version"
        if r.metrics:
            _render_realized(console, r, VERDICT[r.degraded], version)
        if r.estimate is not None:
            _render_estimate(console, r, version)
        for point in r.change_points:
            when = f"{point.at:%Y-%m-%d %H:%M}" if point.at else f"row {point.index}"
            console.print(
                f"  change point ({point.method}): the error level changed at {when}, "
                f"mean loss {_value(point.before)} before, {_value(point.after)} after"
            )
        if r.analysis is not None:
            a = r.analysis
            console.print(
                f"  {a.phase} analysis ({a.mode}) of v{a.version} against v{a.against}: "
                f"{a.comparison.verdict}, {a.comparison.reason}",
                markup=False,
            )
        for move in r.moves:
            console.print(f"  {move.describe()}", markup=False)
        if r.rollout_error:
            console.print(f"  the rollout cannot move: {r.rollout_error}", markup=False)
        for done in (d for d in r.realized if d.metric == r.primary_metric):
            console.print(
                f"  labels arrived for the estimate of {done.window_start:%Y-%m-%d %H:%M} to "
                f"{done.window_end:%Y-%m-%d %H:%M}: {done.metric} estimated "
                f"{_value(done.estimated)}, realized {_value(done.realized)}"
            )


def _render_estimate(console: Console, r: PerfResult, version: str) -> None:
    e = r.estimate
    if e is None:
        return
    console.print(
        f"{r.job} ({r.model}, {version}) estimated: {VERDICT[e.degraded]} — "
        f"{r.primary_metric} {_value(e.metrics.get(r.primary_metric))} "
        f"({better(r.primary_metric)} is better; threshold {_value(r.threshold)}, "
        f"hold-out {_value(r.baseline)}); {e.n_samples} unlabelled rows, calibrated on "
        f"{e.n_reference} labelled ({_fit(r.primary_metric)} {_value(e.brier)})"
    )
    for line in e.judgement:
        console.print(f"  {line}")
    console.print(
        table(
            None,
            ["metric", "estimated", "better", "undefined because"],
            [(name, value, better(name), e.reasons.get(name)) for name, value in e.metrics.items()],
        )
    )


def _render_realized(console: Console, r: PerfResult, verdict: str, version: str) -> None:
    console.print(
        f"{r.job or '(ad hoc)'} ({r.model}, {version}): {verdict} — "
        f"{r.primary_metric} {_value(r.metrics[r.primary_metric])} "
        f"({better(r.primary_metric)} is better; threshold {_value(r.threshold)}, "
        f"hold-out {_value(r.baseline)}); {r.n_samples} rows, {r.n_dropped} dropped"
    )
    for line in r.judgement:
        console.print(f"  {line}")
    console.print(
        table(
            None,
            ["metric", "value", "better", "undefined because"],
            [(name, value, better(name), r.reasons.get(name)) for name, value in r.metrics.items()],
        )
    )


def _fit(metric: str) -> str:
    """What an estimate's calibration quality is: a regression job's loss model's error."""
    return "loss model MAE" if metric in ("rmse", "mae") else "Brier"


def _value(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"
