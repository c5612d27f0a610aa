"""What the report shows, read from the tables alone.

Time series are aggregated in SQL into at most BUCKETS buckets of the period, so a year of
hourly checks costs a few hundred rows per chart, not thousands: each point is the mean over
its bucket (the drift heatmap: the worst check in the bucket).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from retrain_cli.core.choices import RowKind, RunStatus, VersionStatus
from retrain_cli.core.errors import DataError
from retrain_cli.db.models import (
    AutoRetrainingJob,
    ModelDriftMonitoring,
    ModelPerformanceTracking,
    ModelVersionEvent,
    ModelVersionManagement,
    RetrainingJobHistory,
)
from retrain_cli.db.queries import drift_verdict, newest_per_model
from retrain_cli.db.tracking import of_kind
from retrain_cli.ops.report.model import (
    Axis,
    BrokenRule,
    Event,
    Heatmap,
    History,
    ModelHistory,
    Run,
    Series,
    Version,
)
from retrain_cli.ops.stats import pipeline_stats
from retrain_cli.statistics.drift import P_VALUE_METHODS

MAX_RUNS = 2000  # the newest runs drawn and listed per model
MAX_VERSIONS = 200  # the newest versions in the lineage table
MAX_BROKEN_RULES = 50  # the newest broken data-contract rules listed per model


def load_history(
    session: Session, now: datetime, since: datetime, models: list[str], slots_in_use: int
) -> History:
    """Every model's history over [since, now]; `models` narrows it (unknown names fail)."""
    known = _model_names(session)
    unknown = sorted(set(models) - set(known))
    if unknown:
        shown = ", ".join(known[:10]) + (f" and {len(known) - 10} more" if len(known) > 10 else "")
        raise DataError(f"no such model: {', '.join(unknown)} (known: {shown or '-'})")
    wanted = sorted(set(models)) if models else known
    stats = pipeline_stats(session, now, now - since, slots_in_use)
    newest_drift = _newest_drift(session)
    newest_primary = _newest_primary(session)
    histories = []
    for model in wanted:
        jobs = [j for j in stats.jobs if j.model == model]
        history = ModelHistory(model, jobs, _axis(session, model, since, now))
        axis = history.axis
        history.importance = _importance(session, model)
        _performance(session, axis, history)
        _drift(session, axis, history)
        history.events = _events(session, model, since)
        history.runs = _runs(session, model, since)
        history.versions = _versions(session, model)
        history.contract = _broken_rules(session, model, since)
        history.alerts = _alerts(history, newest_drift.get(model), newest_primary.get(model))
        histories.append(history)
    histories.sort(key=lambda h: (-len(h.alerts), h.model))  # the most urgent first
    return History(now, since, stats.slots_in_use, stats.database_slots, histories)


def _importance(session: Session, model: str) -> dict[str, float] | None:
    """The active version's share of importance per feature, the largest first."""
    version = ModelVersionManagement
    found = session.scalar(
        select(version.importance).where(
            version.model_name == model, version.status == VersionStatus.ACTIVE
        )
    )
    if not found:
        return None
    return dict(sorted(((k, float(v)) for k, v in found.items()), key=lambda kv: (-kv[1], kv[0])))


def _model_names(session: Session) -> list[str]:
    jobs = select(AutoRetrainingJob.model_name)
    versions = select(ModelVersionManagement.model_name)
    return sorted(set(session.scalars(jobs.union(versions))))


def _axis(session: Session, model: str, since: datetime, now: datetime) -> Axis:
    """The period, from the model's first fact in it rather than from `since` (a model that
    is a day old is drawn over that day), padded by a fiftieth on the left."""
    drift, performance, run, job, event = (
        ModelDriftMonitoring,
        ModelPerformanceTracking,
        RetrainingJobHistory,
        AutoRetrainingJob,
        ModelVersionEvent,
    )
    firsts = [
        session.scalar(
            select(func.min(drift.checked_at)).where(
                drift.model_name == model, drift.checked_at >= since
            )
        ),
        session.scalar(
            select(func.min(performance.checked_at)).where(
                performance.model_name == model, performance.checked_at >= since
            )
        ),
        session.scalar(
            select(func.min(run.started_at))
            .join(job, job.id == run.job_id)
            .where(job.model_name == model, run.started_at >= since)
        ),
        session.scalar(
            select(func.min(event.at)).where(event.model_name == model, event.at >= since)
        ),
    ]
    first = min((f for f in firsts if f is not None and f <= now), default=since)
    padding = max((now - first) / 50, timedelta(minutes=1))
    return Axis.of(max(first - padding, since), now)


def _performance(session: Session, axis: Axis, history: ModelHistory) -> None:
    """The primary metric per bucket, realized and estimated (the same row kinds `perf check`
    judges), with its threshold, baseline and degraded checks."""
    table = ModelPerformanceTracking
    bucket = axis.bucket(table.checked_at).label("bucket")
    rows = session.execute(
        select(
            table.kind,
            table.metric,
            bucket,
            func.avg(table.value),
            func.avg(table.threshold),
            func.avg(table.baseline),
            func.max(case((table.degraded.is_(True), 1), else_=0)),
        )
        .where(
            table.model_name == history.model,
            table.is_primary,
            table.checked_at >= axis.since,
            table.checked_at <= axis.now,
        )
        .group_by(table.kind, table.metric, bucket)
        .order_by(bucket)
    ).all()
    if not rows:
        return
    # the metric most recently chosen as primary (a job may have changed it)
    history.metric = rows[-1][1]
    realized = [r for r in rows if r[1] == history.metric and r[0] == RowKind.CHECKED]
    estimated = [r for r in rows if r[1] == history.metric and r[0] == RowKind.ESTIMATED]
    history.realized = _series(axis, ((r[2], r[3]) for r in realized))
    history.estimated = _series(axis, ((r[2], r[3]) for r in estimated))
    thresholds = {r[2]: r[4] for r in [*estimated, *realized]}  # one a bucket: realized wins
    history.threshold = _series(axis, sorted(thresholds.items()))
    history.baseline = _series(axis, ((r[2], r[5]) for r in realized))
    history.degraded_at = [axis.at(r[2]) for r in realized if r[6]]
    history.change_points = sorted(
        set(
            session.scalars(
                select(table.window_start).where(
                    table.model_name == history.model,
                    of_kind(RowKind.CHANGE_POINT),
                    table.window_start >= axis.since,
                    table.window_start <= axis.now,
                )
            )
        )
    )


def _drift(session: Session, axis: Axis, history: ModelHistory) -> None:
    table = ModelDriftMonitoring
    bucket = axis.bucket(table.checked_at).label("bucket")
    in_period = (
        table.model_name == history.model,
        table.checked_at >= axis.since,
        table.checked_at <= axis.now,
    )
    share = session.execute(
        select(bucket, func.avg(table.drift_share), func.count())
        .where(drift_verdict(table), *in_period)
        .group_by(bucket)
        .order_by(bucket)
    ).all()
    history.drift_share = _series(axis, ((b, v) for b, v, _ in share))
    alarm = session.scalars(
        select(table.metrics)
        .where(drift_verdict(table), *in_period)
        .order_by(table.checked_at.desc())
        .limit(1)
    ).first()
    if alarm is not None and isinstance(alarm.get("required_share"), int | float):
        history.drift_alarm_share = float(alarm["required_share"])

    # no wider a heatmap than there are checks: six-hourly checks over 30 days make 120
    # columns, not 300 with every other one empty
    checks = sum(n for _, _, n in share)
    seconds = int((axis.now - axis.since).total_seconds())
    columns = Axis(axis.since, axis.now, max(axis.width_s, -(-seconds // max(checks, 1))))
    bucket = columns.bucket(table.checked_at).label("bucket")
    cells = session.execute(
        select(
            table.feature,
            table.method,
            bucket,
            func.max(table.statistic),
            func.min(table.statistic),
            func.max(table.threshold),
        )
        .where(table.scope.in_(("feature", "prediction")), *in_period)
        .group_by(table.feature, table.method, bucket)
    ).all()
    scores: dict[str, dict[int, float]] = {}
    methods: dict[str, str] = {}
    for feature, method, b, highest, lowest, threshold in cells:
        score = _score(method, highest, lowest, threshold)
        if feature is None or score is None:
            continue
        methods[feature] = method
        cell = scores.setdefault(feature, {})
        cell[b] = max(score, cell.get(b, score))
    if not scores:
        return
    # the features the active version leans on most first (then by name; outputs last)
    weights = history.importance or {}
    features = sorted(scores, key=lambda f: (-float(weights.get(f, -1.0)), f))
    first = min(min(cell) for cell in scores.values())
    last = max(max(cell) for cell in scores.values())
    history.heatmap = Heatmap(
        features,
        [methods[f] for f in features],
        columns.at(first) - timedelta(seconds=columns.width_s / 2),
        columns.at(last) + timedelta(seconds=columns.width_s / 2),
        [[scores[f].get(b) for b in range(first, last + 1)] for f in features],
    )


def _score(
    method: str, highest: float | None, lowest: float | None, threshold: float | None
) -> float | None:
    """1 at the alarm for every method: statistic / threshold, or alpha / p-value."""
    if threshold is None or threshold <= 0:
        return None
    if method in P_VALUE_METHODS:
        return None if lowest is None else threshold / max(lowest, 1e-300)
    return None if highest is None else highest / threshold


def _events(session: Session, model: str, since: datetime) -> list[Event]:
    table = ModelVersionEvent
    return [
        Event(at, event, from_version, to_version, actor, reason)
        for at, event, from_version, to_version, actor, reason in session.execute(
            select(
                table.at,
                table.event,
                table.from_version,
                table.to_version,
                table.actor,
                table.reason,
            )
            .where(table.model_name == model, table.at >= since)
            .order_by(table.at, table.id)
        )
    ]


def _runs(session: Session, model: str, since: datetime) -> list[Run]:
    run, job, version = RetrainingJobHistory, AutoRetrainingJob, ModelVersionManagement
    rows = session.execute(
        select(
            run.id,
            job.name.label("job"),
            run.trigger,
            run.trigger_detail,
            run.status,
            run.started_at,
            run.duration_s,
            run.error,
            version.version,
            run.promoted,
        )
        .join(job, job.id == run.job_id)
        .outerjoin(version, version.id == run.version_id)
        .where(job.model_name == model, run.started_at >= since)
        .order_by(run.started_at.desc(), run.id.desc())
        .limit(MAX_RUNS)
    )
    return [Run(**row._asdict()) for row in rows]


def _versions(session: Session, model: str) -> list[Version]:
    version, run = ModelVersionManagement, RetrainingJobHistory
    rows = session.execute(
        select(
            version.version,
            version.status,
            version.parent_version,
            version.strategy,
            version.created_at,
            version.promoted_at,
            run.trigger,
            run.gate,
        )
        .outerjoin(run, run.version_id == version.id)
        .where(version.model_name == model)
        .order_by(version.version.desc())
        .limit(MAX_VERSIONS)
    ).all()
    result = []
    for number, status, parent, strategy, created, promoted, trigger, gate in rows:
        gate = gate or {}
        values = gate.get("values") or {}
        challenger = values.get("challenger")
        result.append(
            Version(
                version=number,
                status=status,
                parent=parent,
                strategy=strategy,
                created_at=created,
                promoted_at=promoted,
                trigger=trigger,
                decision=gate.get("decision"),
                reasons=[str(r) for r in gate.get("reasons") or []],
                primary=challenger if isinstance(challenger, int | float) else None,
            )
        )
    return result


def _broken_rules(session: Session, model: str, since: datetime) -> list[BrokenRule]:
    table = ModelDriftMonitoring
    rows = session.execute(
        select(table.checked_at, table.method, table.feature, table.metrics)
        .where(table.model_name == model, table.scope == "contract", table.checked_at >= since)
        .order_by(table.checked_at.desc(), table.id)
        .limit(MAX_BROKEN_RULES)
    )
    return [BrokenRule(at, rule, column, str(m.get("message", ""))) for at, rule, column, m in rows]


def _newest_drift(session: Session) -> dict[str, tuple[bool, int]]:
    """Per model, whether the newest check drifted, and the contract rules its window broke."""
    table = ModelDriftMonitoring
    query = newest_per_model(
        table, drift_verdict(table), table.model_name, table.drifted, table.metrics
    )
    return {
        model: (bool(drifted), int(metrics.get("contract_violations") or 0))
        for model, drifted, metrics in session.execute(query)
    }


def _newest_primary(session: Session) -> dict[str, bool]:
    table = ModelPerformanceTracking
    realized = and_(table.is_primary, of_kind(RowKind.CHECKED))
    query = newest_per_model(table, realized, table.model_name, table.degraded)
    return {model: bool(degraded) for model, degraded in session.execute(query)}


def _alerts(
    history: ModelHistory, drift: tuple[bool, int] | None, degraded: bool | None
) -> list[str]:
    """What needs an operator now: the newest checks' verdicts and the jobs' last runs."""
    alerts = []
    drifted, broken = drift or (False, 0)
    if drifted:
        alerts.append("drift in the newest check")
    if broken:
        alerts.append(f"the newest check's window broke {broken} rule(s) of the data contract")
    if degraded:
        alerts.append("performance degraded in the newest check")
    for job in history.jobs:
        if job.last_status in (RunStatus.FAILED, RunStatus.ABANDONED):
            alerts.append(f"last run of {job.job} {job.last_status}")
    if history.jobs and not any(j.active_version for j in history.jobs):
        alerts.append("no active version")
    return alerts


def _series(axis: Axis, pairs: Any) -> Series:
    """(bucket, value) pairs on the time axis, NULL values left out."""
    kept = [(axis.at(b), float(v)) for b, v in pairs if v is not None]
    return Series([t for t, _ in kept], [v for _, v in kept])
