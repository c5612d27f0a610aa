"""`retrain-cli stats`: pipeline statistics for operators."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from retrain_cli.cli.options import DatabaseUrl, Json, Now, Quiet
from retrain_cli.cli.output import Output, minutes, table
from retrain_cli.cli.runtime import open_session
from retrain_cli.core.durations import parse_duration, utcnow


def stats(
    since: Annotated[str, typer.Option(help="The period: 24h, 7d, 30d, ...")] = "7d",
    now: Now = None,
    database_url: DatabaseUrl = None,
    as_json: Json = False,
    quiet: Quiet = False,
) -> None:
    """Per job: runs by status, success rate, p50/p95 duration, last run, active version and
    its age, drift alerts and degradations in the period, next fire; totals; slots in use.

    Example: retrain-cli stats --since 7d
    """
    from retrain_cli.ops.stats import pipeline_stats
    from retrain_cli.training.slots import file_slots

    try:
        period = parse_duration(since)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--since") from exc
    with open_session(database_url) as (settings, session):
        in_use = file_slots(settings).slots_in_use()
        result = pipeline_stats(session, now or utcnow(), period, in_use)
    Output(as_json, quiet).emit(result, lambda c: _render(c, result, since))


def _render(console: Any, result: Any, since: str) -> None:
    rows = [
        (
            j.job,
            j.model,
            _runs(j.runs),
            "-" if j.success_rate is None else f"{j.success_rate:.0%}",
            j.p50_s,
            j.p95_s,
            f"{j.last_status or '-'} {j.last_run_at:%m-%d %H:%M}" if j.last_run_at else "-",
            f"v{j.active_version}" if j.active_version else "-",
            f"{j.active_age_s / 86400:.1f}d" if j.active_age_s is not None else "-",
            j.drift_alerts,
            j.degradations,
            j.contract_breaks,
            minutes(j.waiting_s),
            j.next_fire,
        )
        for j in result.jobs
    ]
    console.print(
        table(
            f"last {since} (since {result.since:%Y-%m-%d %H:%M}Z)",
            [
                "job",
                "model",
                "runs",
                "success",
                "p50 s",
                "p95 s",
                "last run",
                "active",
                "age",
                "drift",
                "degraded",
                "contract",
                "waiting",
                "next fire",
            ],
            rows,
        )
    )
    t = result.totals
    rate = "-" if t["success_rate"] is None else f"{t['success_rate']:.0%}"
    console.print(
        f"{t['jobs']} jobs ({t['enabled']} enabled); runs {_runs(t['runs'])}; success {rate}; "
        f"{t['drift_alerts']} drift alerts, {t['degradations']} degradations, "
        f"{t['contract_breaks']} broken data contracts; "
        f"retrain slots in use: {result.slots_in_use}"
    )
    estimated = {
        (j.model, j.primary_metric, j.better, j.estimation_error, j.estimates_realized)
        for j in result.jobs
        if j.estimates_realized
    }
    for model, metric, direction, error, count in sorted(estimated):
        console.print(
            f"estimated {metric} of {model} ({direction} is better): off by {error:.4f} on "
            f"average over {count} estimates whose labels arrived"
        )
    for model, rollout in sorted({j.model: j.rollout for j in result.jobs if j.rollout}.items()):
        console.print(f"rollout of {model}: {_rollout_line(rollout)}")
    for held in result.database_slots:
        console.print(
            f"database slot {held['slot']}: {held['job']} (run {held['run_id']}, pid "
            f"{held['pid']} on {held['host']}), lease renewed {held['lease_age_s']:.0f}s ago"
        )


def _runs(runs: dict[str, int]) -> str:
    return " ".join(f"{status} {count}" for status, count in sorted(runs.items())) or "-"


def _rollout_line(rollout: dict[str, Any]) -> str:
    """`v8 canary, step 2 of 3 at 50% since 12-02 10:00`."""
    return (
        f"v{rollout['candidate']} {rollout['mode']}, step {rollout['step']} of "
        f"{rollout['steps']} at {rollout['weight']:.0%} since {rollout['step_since']:%m-%d %H:%M}"
    )
