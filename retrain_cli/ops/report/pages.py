"""The report's HTML: an overview page and one page per model, with no script and nothing to
fetch. Every value from the tables is escaped; the charts are matplotlib's inline SVG."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from html import escape
from typing import TYPE_CHECKING, Any

from retrain_cli.core.durations import format_duration
from retrain_cli.ops.report import charts
from retrain_cli.ops.report.model import History, ModelHistory, Run, Version

if TYPE_CHECKING:
    from retrain_cli.ops.stats import JobStats

STYLE = """
:root{color-scheme:light dark;--bg:#fff;--ink:#1d1d1f;--muted:#5f6368;--line:#d0d4d9;
--alert:#b3261e;--ok:#1e7d45;--card:#f6f7f9}
@media (prefers-color-scheme:dark){:root{--bg:#15171a;--ink:#e6e8eb;--muted:#a0a6ad;
--line:#3a3f45;--alert:#ff8a80;--ok:#7bd88f;--card:#1d2024}}
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;padding:1.5em;max-width:70em;
background:var(--bg);color:var(--ink)}
h1{font-size:1.45em;margin:.2em 0} h2{font-size:1.15em;margin:1.8em 0 .4em}
a{color:inherit} .muted{color:var(--muted)} .alert{color:var(--alert);font-weight:600}
.ok{color:var(--ok)} figure{margin:.5em 0;background:var(--card);border-radius:6px;padding:.4em}
svg{max-width:100%;height:auto} figcaption{color:var(--muted);font-size:.9em}
table{border-collapse:collapse;margin:.5em 0;width:100%}
td,th{padding:.25em .6em;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{font-weight:600} td.n{text-align:right;font-variant-numeric:tabular-nums}
pre{white-space:pre-wrap;word-break:break-word;margin:0;font-size:.9em}
tr:target{outline:2px solid var(--alert)}
"""


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
            [
                f"<a href='{page_name(model.model)}'>{escape(model.model)}</a>",
                escape(", ".join(j.job for j in jobs)) or "-",
                _active(active, next((j.rollout for j in jobs if j.rollout), None)),
                _age(active.active_age_s if active else None),
                _last_run(last.last_status, last.last_run_at) if last else "-",
                _alerts(model.alerts),
                _time(min(fires)) if fires else "-",
            ]
        )
    slots = f"retrain slots in use on this host: {history.slots_in_use}"
    for held in history.database_slots:
        slots += escape(
            f"; database slot {held['slot']}: {held['job']} (pid {held['pid']} on {held['host']})"
        )
    body = (
        f"<h1>retrain-cli report</h1><p class='muted'>{_period(history)}. {slots}. "
        "Models needing attention first.</p>"
        + _table(
            ["model", "jobs", "active", "age", "last run", "open alerts", "next fire"],
            rows,
            numeric=(2, 3),
        )
        if rows
        else "<h1>retrain-cli report</h1><p>No models yet: apply a job file and run a check.</p>"
    )
    return _document("retrain-cli report", body)


def model_page(history: History, model: ModelHistory) -> str:
    parts = [
        "<p><a href='index.html'>&larr; all models</a></p>",
        f"<h1>{escape(model.model)}</h1>",
        f"<p class='muted'>{_period(history)}. Jobs: "
        f"{escape(', '.join(j.job for j in model.jobs)) or '-'}.</p>",
        f"<p>Open alerts: {_alerts(model.alerts)}</p>",
        "<h2>Performance</h2>",
    ]
    if model.realized.values or model.estimated.values:
        parts.append(
            _figure(
                charts.performance(model),
                f"The primary metric ({escape(model.metric or '')}), realized on labelled "
                "predictions and, where estimated without labels, estimated (CBPE): the mean per "
                "time bucket, its threshold and the active version's hold-out value; crosses "
                "mark degraded checks, vertical lines version events.",
            )
        )
    else:
        parts.append("<p class='muted'>No performance check in the period.</p>")
    parts.append("<h2>Drift</h2>")
    if model.drift_share.values:
        parts.append(
            _figure(
                charts.drift_share(model),
                "Share of drifted features per check (mean per time bucket) and the share that "
                "raises the alarm.",
            )
        )
    else:
        parts.append("<p class='muted'>No drift check in the period.</p>")
    if model.heatmap is not None:
        parts.append(
            _figure(
                charts.heatmap(model, model.heatmap),
                "Each feature's drift statistic over its threshold (for p-value methods, the "
                "significance level over the p-value), the worst check per time bucket: 1 and "
                "above is drift. Empty cells: no check.",
            )
        )
    parts.append("<h2>Runs</h2>")
    if any(r.duration_s is not None for r in model.runs):
        parts.append(
            _figure(
                charts.runs(model),
                "Each finished run by start time and duration; colour is the status, shape the "
                "trigger. A failed run links to its error below.",
            )
        )
    parts.append(_runs_table(model.runs))
    parts.append("<h2>Version events</h2>")
    parts.append(
        _table(
            ["at", "event", "from", "to", "actor", "reason"],
            [
                [
                    _time(e.at),
                    escape(e.event),
                    f"v{e.from_version}" if e.from_version else "-",
                    f"v{e.to_version}",
                    escape(e.actor),
                    escape(e.reason or ""),
                ]
                for e in reversed(model.events)
            ],
        )
        if model.events
        else "<p class='muted'>No promotion or rollback in the period.</p>"
    )
    parts.append("<h2>Version lineage</h2>")
    parts.append(_versions_table(model.versions))
    return _document(f"{model.model} - retrain-cli report", "".join(parts))


def _runs_table(runs: Sequence[Run]) -> str:
    if not runs:
        return "<p class='muted'>No run in the period.</p>"
    failures = [r for r in runs if r.error]
    shown = failures[:100] + [r for r in runs[:50] if not r.error]
    shown.sort(key=lambda r: r.started_at, reverse=True)
    rows = [
        (
            f"run-{r.id}" if r.error else None,
            [
                _time(r.started_at),
                escape(r.job),
                escape(r.trigger) + (f": {escape(r.trigger_detail)}" if r.trigger_detail else ""),
                _status(r.status),
                _seconds(r.duration_s),
                f"v{r.version}" + (" promoted" if r.promoted else "") if r.version else "-",
                f"<pre>{escape(r.error)}</pre>" if r.error else "",
            ],
        )
        for r in shown
    ]
    note = (
        f"<p class='muted'>{len(runs)} runs in the period; every failure (up to 100) and the "
        "newest 50 others.</p>"
    )
    return note + _table(
        ["started", "job", "trigger", "status", "duration", "version", "error"], rows
    )


def _versions_table(versions: Sequence[Version]) -> str:
    if not versions:
        return "<p class='muted'>No version registered.</p>"
    rows = [
        [
            f"v{v.version}",
            _status(v.status),
            f"v{v.parent}" if v.parent else "-",
            escape(v.strategy or "-"),
            escape(v.trigger or "-"),
            _time(v.created_at),
            _time(v.promoted_at) if v.promoted_at else "-",
            "-" if v.primary is None else f"{v.primary:.4g}",
            escape(v.decision or "-"),
            escape("; ".join(v.reasons)),
        ]
        for v in versions
    ]
    return _table(
        [
            "version",
            "status",
            "parent",
            "strategy",
            "trigger",
            "created",
            "promoted",
            "hold-out",
            "gate",
            "gate reasons",
        ],
        rows,
    )


def _table(
    header: Sequence[str],
    rows: Iterable[Sequence[str] | tuple[str | None, Sequence[str]]],
    numeric: Sequence[int] = (),
) -> str:
    head = "".join(f"<th>{h}</th>" for h in header)
    body = []
    for row in rows:
        anchor, cells = row if isinstance(row, tuple) else (None, row)
        tds = "".join(
            f"<td class='n'>{c}</td>" if i in numeric else f"<td>{c}</td>"
            for i, c in enumerate(cells)
        )
        body.append(f"<tr id='{anchor}'>{tds}</tr>" if anchor else f"<tr>{tds}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _figure(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption>{caption}</figcaption></figure>"


def _document(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>{body}</body></html>"
    )


def _alerts(alerts: Sequence[str]) -> str:
    if not alerts:
        return "<span class='ok'>none</span>"
    return "<span class='alert'>" + escape("; ".join(alerts)) + "</span>"


def _status(status: str) -> str:
    css = {"failed": "alert", "abandoned": "alert", "succeeded": "ok", "active": "ok"}.get(status)
    return f"<span class='{css}'>{escape(status)}</span>" if css else escape(status)


def _last_run(status: str | None, at: datetime | None) -> str:
    return f"{_status(status or '-')} {_time(at)}" if at else "-"


def _period(history: History) -> str:
    return f"From {_time(history.since)} to {_time(history.now)} (UTC)"


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
    return escape(shown)


def _age(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 86400:.1f}d"
