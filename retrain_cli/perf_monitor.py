"""One performance check: load scored predictions, compute every metric, judge, record."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from retrain_cli import performance
from retrain_cli.choices import Metric
from retrain_cli.datasource import file_source, read_frame
from retrain_cli.db.models import ModelPerformanceTracking
from retrain_cli.errors import DataError
from retrain_cli.jobs import JobFailure, check_each
from retrain_cli.jobspec import PerformanceSpec
from retrain_cli.notify import Event
from retrain_cli.registry import active_version

if TYPE_CHECKING:
    import pandas as pd

    from retrain_cli.jobs import EffectiveJob


class PerfSettings(PerformanceSpec):
    """A job's `performance` section, its primary metric and that metric's threshold."""

    primary_metric: Metric
    threshold: float | None


@dataclass(frozen=True)
class PredictionColumns:
    time: str | None
    label: str
    score: str
    returns: str | None


AD_HOC_COLUMNS = PredictionColumns(time="ts", label="y_true", score="y_score", returns="return")


@dataclass
class PerfResult:
    job: str | None
    model: str
    version: int | None
    checked_at: datetime
    degraded: bool | None
    primary_metric: str
    metrics: dict[str, float | None]
    reasons: dict[str, str]
    n_samples: int
    n_dropped: int
    threshold: float | None
    baseline: float | None
    judgement: list[str]
    window_start: datetime | None = None
    window_end: datetime | None = None
    check_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def events(self) -> list[Event]:
        """What operators are told after the check is recorded."""
        if not self.degraded:
            return []
        summary = f"{self.primary_metric} of {self.job or self.model} degraded: " + "; ".join(
            self.judgement
        )
        details = {"metrics": self.metrics, "version": self.version}
        return [
            Event("performance_degraded", summary, self.checked_at, self.job, self.model, details)
        ]


def settings_for(job: EffectiveJob) -> PerfSettings:
    return PerfSettings(
        primary_metric=job.spec.primary_metric,
        threshold=job.performance_threshold,
        **dict(job.spec.performance),
    )


def columns_for(job: EffectiveJob) -> PredictionColumns:
    spec = job.spec
    return PredictionColumns(spec.time_column, spec.target, spec.score_column, spec.return_column)


def check_jobs(
    session: Session, jobs: Sequence[EffectiveJob], now: datetime, *, every_enabled: bool
) -> list[PerfResult | JobFailure]:
    """Check and record each job (see `jobs.check_each`); `--all` skips jobs without a
    predictions source."""
    return check_each(
        jobs,
        lambda job: evaluate_job(session, job, now),
        lambda result, job_id: record(session, result, job_id),
        applies=lambda job: job.spec.data.predictions is not None,
        every_enabled=every_enabled,
    )


def evaluate_job(session: Session, job: EffectiveJob, now: datetime) -> PerfResult:
    """Score the job's predictions source (nothing recorded)."""
    source = job.spec.data.predictions
    if source is None:
        raise DataError(f"job {job.name!r} has no data.predictions source")
    frame = read_frame(source, "predictions")
    return evaluate(session, frame, columns_for(job), settings_for(job), job.model, job.name, now)


def check_file(
    session: Session, model: str, path: Path, settings: PerfSettings, now: datetime
) -> PerfResult:
    """The ad hoc form: one file with the default column names, recorded without a job."""
    frame = read_frame(file_source(path), "predictions")
    columns = AD_HOC_COLUMNS
    if columns.returns not in frame.columns:
        columns = PredictionColumns(columns.time, columns.label, columns.score, None)
    result = evaluate(session, frame, columns, settings, model, None, now)
    record(session, result, job_id=None)
    return result


def evaluate(
    session: Session,
    frame: pd.DataFrame,
    columns: PredictionColumns,
    settings: PerfSettings,
    model: str,
    job: str | None,
    now: datetime,
) -> PerfResult:
    """Metrics of the rows with every used column present, judged against the threshold and
    the active version's hold-out value (nothing recorded)."""
    used = [c for c in (columns.label, columns.score, columns.returns) if c]
    missing = [c for c in [*used, columns.time] if c and c not in frame.columns]
    if missing:
        raise DataError(f"predictions have no column {', '.join(map(repr, missing))}")
    frame = _window(frame, columns.time, settings.window)
    complete = frame.dropna(subset=used)
    arrays = {c: _floats(complete[c], c) for c in used}
    labels = arrays[columns.label]
    if not set(labels.tolist()) <= {0.0, 1.0}:
        raise DataError(f"column {columns.label!r} must hold 0/1 outcomes")
    outside = int(((arrays[columns.score] < 0) | (arrays[columns.score] > 1)).sum())
    if outside:
        raise DataError(
            f"column {columns.score!r} has {outside} scores outside [0, 1]: "
            "probabilities are expected, not logits"
        )
    evaluation = performance.evaluate(
        labels,
        arrays[columns.score],
        arrays[columns.returns] if columns.returns else None,
        threshold=settings.decision_threshold,
        min_samples=settings.min_samples,
        periods_per_year=settings.periods_per_year,
        risk_free=settings.risk_free,
    )
    metric = settings.primary_metric
    if metric not in evaluation.values:
        raise DataError(f"primary metric {metric!r} needs a return column in the predictions")
    active = active_version(session, model)
    baseline = _number(active.metrics.get(metric)) if active else None
    verdict = performance.judge(
        metric, evaluation.values[metric], settings.threshold, baseline, settings.max_relative_drop
    )
    times = complete[columns.time] if columns.time and len(complete) else None
    return PerfResult(
        job=job,
        model=model,
        version=active.version if active else None,
        checked_at=now,
        degraded=verdict.degraded,
        primary_metric=metric,
        metrics=evaluation.values,
        reasons=evaluation.reasons,
        n_samples=len(complete),
        n_dropped=len(frame) - len(complete),
        threshold=settings.threshold,
        baseline=baseline,
        judgement=verdict.reasons,
        window_start=_instant(times.min()) if times is not None else None,
        window_end=_instant(times.max()) if times is not None else None,
    )


def _window(frame: pd.DataFrame, time_column: str | None, window_s: int | None) -> pd.DataFrame:
    """The rows of the last `window_s` seconds before the newest timestamp."""
    if window_s is None:
        return frame
    if time_column is None:
        raise DataError("a performance window needs the job's time_column")
    import pandas as pd

    from retrain_cli.training_data import time_order

    times = pd.to_datetime(time_order(frame[time_column], time_column), utc=True)
    newest = times.max()
    if pd.isna(newest):
        raise DataError(f"column {time_column!r} has no timestamps")
    return frame[times > newest - pd.Timedelta(seconds=window_s)]


def _floats(series: pd.Series[Any], name: str) -> performance.FloatArray:
    import numpy as np
    import pandas as pd

    if not pd.api.types.is_numeric_dtype(series.dtype):  # bool counts as numeric
        raise DataError(f"column {name!r} must be numeric, not {series.dtype}")
    values: performance.FloatArray = series.to_numpy(dtype=np.float64, na_value=np.nan)
    if not np.isfinite(values).all():
        raise DataError(f"column {name!r} has infinite values")
    return values


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _instant(value: Any) -> datetime | None:
    import pandas as pd

    stamp = pd.Timestamp(value)
    if pd.isna(stamp):
        return None
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    result: datetime = stamp.to_pydatetime()
    return result


def record(session: Session, result: PerfResult, job_id: int | None) -> None:
    """One row per metric; the primary metric's row carries the threshold and the verdict."""
    session.add_all(
        ModelPerformanceTracking(
            check_id=result.check_id,
            job_id=job_id,
            model_name=result.model,
            version=result.version,
            checked_at=result.checked_at,
            window_start=result.window_start,
            window_end=result.window_end,
            metric=name,
            value=value,
            reason=result.reasons.get(name),
            threshold=result.threshold if name == result.primary_metric else None,
            baseline=result.baseline if name == result.primary_metric else None,
            is_primary=name == result.primary_metric,
            degraded=result.degraded if name == result.primary_metric else None,
            n_samples=result.n_samples,
            n_dropped=result.n_dropped,
        )
        for name, value in result.metrics.items()
    )
    session.flush()
