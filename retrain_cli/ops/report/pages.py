"""The report's HTML (`templates/`): an overview page and one page per model, with no script and
nothing to fetch. Jinja2 escapes every value from the tables; the charts are matplotlib's inline
SVG."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from retrain_cli.core.durations import format_duration
from retrain_cli.core.templates import render
from retrain_cli.ops.report import charts
from retrain_cli.ops.report.model import History, ModelHistory, Run, Version

if TYPE_CHECKING:
    from retrain_cli.ops.stats import JobStats

RUNS_SHOWN, FAILURES_SHOWN = 50, 100


def page_name(model: str) -> str:
    """A file name for the model's page that stays in the report's directory whatever the name
    holds (`../`, `/`, markup): its safe characters and a digest that keeps names apart."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", model).strip(".")[:60] or "model"
    return f"model-{safe}-{hashlib.sha256(model.encode()).hexdigest()[:10]}.html"


def index_page(history: History) -> str:
    now = history.now
    rows = []
    for model in history.models:
        jobs = model.jobs
        active = next((j for j in jobs if j.active_version), None)
        ran = [j for j in jobs if j.last_run_at is not None]
        last = max(ran, key=lambda j: j.last_run_at or now, default=None)
        fires = [j.next_fire for j in jobs if j.next_fire]
        rows.append(
            {
                "page": page_name(model.model),
                "model": model.model,
                "jobs": ", ".join(j.job for j in jobs),
                "active": _active(active, next((j.rollout for j in jobs if j.rollout), None)),
                "age": _age(active.active_age_s if active else None),
                "last_status": (last.last_status if last else None) or "-",
                "last_run_at": _time(last.last_run_at) if last and last.last_run_at else None,
                "alerts": model.alerts,
                "next_fire": _time(min(fires)) if fires else "-",
            }
        )
    slots = f"retrain slots in use on this host: {history.slots_in_use}"
    for held in history.database_slots:
        slots += (
            f"; database slot {held['slot']}: {held['job']} (pid {held['pid']} on {held['host']})"
        )
    return _page("index.html.j2", "retrain-cli report", rows=rows, slots=slots, history=history)


def model_page(history: History, model: ModelHistory) -> str:
    svgs = {
        "performance": (
            charts.performance(model) if model.realized.values or model.estimated.values else None
        ),
        "drift_share": charts.drift_share(model) if model.drift_share.values else None,
        "heatmap": charts.heatmap(model, model.heatmap) if model.heatmap is not None else None,
        "runs": (charts.runs(model) if any(r.duration_s is not None for r in model.runs) else None),
    }
    return _page(
        "model.html.j2",
        f"{model.model} - retrain-cli report",
        history=history,
        model=model,
        jobs=", ".join(j.job for j in model.jobs),
        charts=svgs,
        n_runs=len(model.runs),
        runs=[_run(r) for r in _runs_shown(model.runs)],
        events=[
            {
                "at": _time(e.at),
                "event": e.event,
                "from_version": f"v{e.from_version}" if e.from_version else "-",
                "to_version": f"v{e.to_version}",
                "actor": e.actor,
                "reason": e.reason or "",
            }
            for e in reversed(model.events)
        ],
        versions=[_version(v) for v in model.versions],
    )


def _page(template: str, title: str, history: History, **context: Any) -> str:
    period = f"From {_time(history.since)} to {_time(history.now)} (UTC)"
    return render(__package__, template, title=title, period=period, **context)


def _runs_shown(runs: Sequence[Run]) -> list[Run]:
    """Every failure (up to 100) and the newest 50 others, newest first."""
    failures = [r for r in runs if r.error]
    shown = failures[:FAILURES_SHOWN] + [r for r in runs[:RUNS_SHOWN] if not r.error]
    return sorted(shown, key=lambda r: r.started_at, reverse=True)


def _run(run: Run) -> dict[str, Any]:
    version = f"v{run.version}" + (" promoted" if run.promoted else "") if run.version else "-"
    return {
        "id": run.id,
        "started_at": _time(run.started_at),
        "job": run.job,
        "trigger": run.trigger + (f": {run.trigger_detail}" if run.trigger_detail else ""),
        "status": run.status,
        "duration": _seconds(run.duration_s),
        "version": version,
        "error": run.error,
    }


def _version(version: Version) -> dict[str, Any]:
    return {
        "version": f"v{version.version}",
        "status": version.status,
        "parent": f"v{version.parent}" if version.parent else "-",
        "strategy": version.strategy or "-",
        "trigger": version.trigger or "-",
        "created_at": _time(version.created_at),
        "promoted_at": _time(version.promoted_at) if version.promoted_at else "-",
        "primary": "-" if version.primary is None else f"{version.primary:.4g}",
        "decision": version.decision or "-",
        "reasons": "; ".join(version.reasons),
    }


def _time(at: datetime | None) -> str:
    return "-" if at is None else f"{at:%Y-%m-%d %H:%M}"


def _seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds:.1f}s" if seconds < 60 else format_duration(round(seconds))


def _active(active: JobStats | None, rollout: dict[str, Any] | None) -> str:
    """The champion, and a candidate in rollout with its share: `v7 (v8 canary 10%)`."""
    shown = f"v{active.active_version}" if active else "-"
    if rollout:
        shown += f" (v{rollout['candidate']} {rollout['mode']} {rollout['weight']:.0%})"
    return shown


def _age(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 86400:.1f}d"
