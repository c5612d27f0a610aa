"""One drift check: load two windows, compare every feature (and the score), decide, record.

Windows are Arrow tables (Parquet is never converted to pandas here); columns are compared on a
thread pool (Arrow and numpy release the GIL), one column per task.
"""

from __future__ import annotations

import importlib
import os
import threading
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from retrain_cli import drift
from retrain_cli.columns import category_counts, numeric_values
from retrain_cli.datasource import file_source, read_table
from retrain_cli.db.models import ModelDriftMonitoring
from retrain_cli.errors import DataError
from retrain_cli.jobs import JobFailure, check_each
from retrain_cli.jobspec import DataSource, DriftSpec
from retrain_cli.notify import Event

if TYPE_CHECKING:
    import pyarrow as pa

    from retrain_cli.jobs import EffectiveJob


class DriftSettings(DriftSpec):
    """A job's `drift` section and the threshold of its method (from the job or its type)."""

    threshold: float


@dataclass(frozen=True)
class Columns:
    """Which columns of the windows are features, which categorical, which is the score."""

    features: list[str] | None
    categorical: Sequence[str] = ()
    excluded: Sequence[str] = ()
    score: str | None = None


@dataclass
class ColumnDrift:
    feature: str
    kind: str
    drifted: bool
    method: str
    statistic: float | None  # None: too few values to say (the reason is in `metrics`)
    threshold: float
    n_reference: int
    n_current: int
    missing_rate_ref: float
    missing_rate_cur: float
    metrics: dict[str, Any]
    histogram: drift.Histogram


@dataclass
class DriftResult:
    job: str | None
    model: str
    checked_at: datetime
    drifted: bool
    drift_share: float | None  # None: no feature had enough values to decide
    required_share: float
    threshold: float
    decision_method: str
    n_reference: int
    n_current: int
    features: list[ColumnDrift]
    prediction: ColumnDrift | None
    check_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def events(self) -> list[Event]:
        """What operators are told after the check is recorded."""
        if not self.drifted:
            return []
        drifted = [f.feature for f in self.features if f.drifted]
        summary = f"drift in {self.job or self.model}: {self.drift_share:.0%} of features"
        details = {"drift_share": self.drift_share, "drifted": drifted}
        return [Event("drift_detected", summary, self.checked_at, self.job, self.model, details)]


NO_SHARE = "too_few_values: no feature had enough values in both windows"


def settings_for(job: EffectiveJob) -> DriftSettings:
    return DriftSettings(threshold=job.drift_threshold, **dict(job.spec.drift))


def columns_for(job: EffectiveJob) -> Columns:
    spec = job.spec
    return Columns(
        features=spec.features,
        categorical=spec.categorical,
        excluded=sorted(spec.special_columns),
        score=spec.score_column,
    )


def has_windows(job: EffectiveJob) -> bool:
    return job.spec.data.reference is not None and job.spec.data.current is not None


def evaluate_job(job: EffectiveJob, now: datetime) -> DriftResult:
    """Compare the job's reference and current windows (nothing recorded)."""
    reference_source, current_source = job.spec.data.reference, job.spec.data.current
    if reference_source is None or current_source is None:
        raise DataError(f"job {job.name!r} needs data.reference and data.current to check drift")
    reference, current = _load_windows(reference_source, current_source)
    return compare_windows(
        reference,
        current,
        columns_for(job),
        settings_for(job),
        model=job.model,
        job=job.name,
        now=now,
    )


def check_jobs(
    session: Session, jobs: Sequence[EffectiveJob], now: datetime, *, every_enabled: bool
) -> list[DriftResult | JobFailure]:
    """Check and record each job (see `jobs.check_each`); `--all` skips jobs without both
    windows."""
    return check_each(
        jobs,
        lambda job: evaluate_job(job, now),
        lambda result, job_id: record(session, result, job_id),
        applies=has_windows,
        every_enabled=every_enabled,
    )


# Column names of the ad hoc forms of `drift check` and `perf check`.
AD_HOC_COLUMNS = Columns(features=None, excluded=("ts", "y_true", "return"), score="y_score")


def check_files(
    session: Session,
    model: str,
    reference: Path,
    current: Path,
    settings: DriftSettings,
    now: datetime,
) -> DriftResult:
    """The ad hoc form: two files, the default column names, recorded without a job."""
    result = compare_windows(
        *_load_windows(file_source(reference), file_source(current)),
        AD_HOC_COLUMNS,
        settings,
        model=model,
        job=None,
        now=now,
    )
    record(session, result, job_id=None)
    return result


def _load_windows(reference: DataSource, current: DataSource) -> tuple[pa.Table, pa.Table]:
    """Both windows, read while scipy.stats (the p-values) imports on a thread: the Parquet
    reader releases the GIL, the import would otherwise stall the column threads."""
    importer = threading.Thread(target=importlib.import_module, args=("scipy.stats",))
    importer.start()
    try:
        return read_table(reference, "reference"), read_table(current, "current")
    finally:
        importer.join()


def compare_windows(
    reference: pa.Table,
    current: pa.Table,
    columns: Columns,
    settings: DriftSettings,
    *,
    model: str,
    job: str | None,
    now: datetime,
) -> DriftResult:
    """Drift of every feature and of the score column between two windows (nothing recorded)."""
    features = _feature_names(reference, current, columns)
    tasks = [(name, _kind(reference.schema.field(name).type, name, columns)) for name in features]
    score = columns.score
    has_score = bool(score and score in reference.column_names and score in current.column_names)
    if has_score:
        assert score is not None
        tasks.append((score, "numeric"))
    compared = _compare_columns(reference, current, tasks, settings)
    prediction = compared.pop() if has_score else None
    decided = [c for c in compared if c.statistic is not None or c.drifted]
    share = sum(c.drifted for c in decided) / len(decided) if decided else None
    return DriftResult(
        job=job,
        model=model,
        checked_at=now,
        drifted=(share is not None and share >= settings.drift_share)
        or bool(prediction and prediction.drifted),
        drift_share=share,
        required_share=settings.drift_share,
        threshold=settings.threshold,
        decision_method=settings.method,
        n_reference=reference.num_rows,
        n_current=current.num_rows,
        features=compared,
        prediction=prediction,
    )


def _compare_columns(
    reference: pa.Table,
    current: pa.Table,
    tasks: list[tuple[str, str]],
    settings: DriftSettings,
) -> list[ColumnDrift]:
    """One column per task, on every core: numpy's sorts release the GIL."""
    workers = max(1, min(len(tasks), os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        compared = [
            pool.submit(_column_drift, reference, current, name, kind, settings)
            for name, kind in tasks
        ]
        return [f.result() for f in compared]


def _feature_names(reference: pa.Table, current: pa.Table, columns: Columns) -> list[str]:
    if columns.features is not None:
        names = list(columns.features)
    else:
        skip = {*columns.excluded, columns.score}
        names = [c for c in reference.column_names if c not in skip]
    for name in names:
        for window, table in (("reference", reference), ("current", current)):
            if name not in table.column_names:
                raise DataError(f"feature {name!r} is missing from the {window} window")
    if not names:
        raise DataError("no feature columns to compare")
    return names


def _kind(arrow_type: pa.DataType, name: str, columns: Columns) -> str:
    """Numeric for integer, floating and decimal columns not listed as categorical; every other
    type (string, dictionary, bool, timestamp, ...) is categorical."""
    import pyarrow as pa

    if name in columns.categorical:
        return "categorical"
    numeric = pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type)
    return "numeric" if numeric or pa.types.is_decimal(arrow_type) else "categorical"


def _column_drift(
    reference: pa.Table, current: pa.Table, name: str, kind: str, settings: DriftSettings
) -> ColumnDrift:
    method = drift.decision_method(settings.method, kind)
    compute: Callable[[], tuple[dict[str, Any], drift.Histogram]]
    if kind == "numeric":
        ref, missing_ref = numeric_values(reference.column(name), name, "reference")
        cur, missing_cur = numeric_values(current.column(name), name, "current")
        n_reference, n_current = ref.size, cur.size
        ordered = settings.all_statistics or method in drift.ORDERED_STATISTICS
        compute = partial(drift.numeric_drift, ref, cur, settings.bins, ordered=ordered)
    else:
        ref_counts, missing_ref = category_counts(reference.column(name), name, "reference")
        cur_counts, missing_cur = category_counts(current.column(name), name, "current")
        n_reference, n_current = sum(ref_counts.values()), sum(cur_counts.values())
        compute = partial(drift.categorical_drift, ref_counts, cur_counts)
    statistic: float | None = None
    threshold = settings.alpha if method in drift.P_VALUE_METHODS else settings.threshold
    drifted = False
    if min(n_reference, n_current) >= settings.min_samples:
        metrics, histogram = compute()
        decision = drift.decide(metrics, method, settings.threshold, settings.alpha)
        statistic, drifted = decision.statistic, decision.drifted
    else:  # a statistic of a handful of values would raise false alarms
        reason = f"too_few_values: {n_reference} reference and {n_current} current values"
        metrics = {"undefined": f"{reason}, needs {settings.min_samples}"}
        histogram = drift.Histogram([], [], [])
    metrics["missing_rate_ref"], metrics["missing_rate_cur"] = missing_ref, missing_cur
    missing_shift = abs(missing_cur - missing_ref) > settings.max_missing_rate_change
    return ColumnDrift(
        feature=name,
        kind=kind,
        drifted=drifted or missing_shift,
        method=method,
        statistic=statistic,
        threshold=threshold,
        n_reference=n_reference,
        n_current=n_current,
        missing_rate_ref=missing_ref,
        missing_rate_cur=missing_cur,
        metrics=metrics,
        histogram=histogram,
    )


def record(session: Session, result: DriftResult, job_id: int | None) -> None:
    """One row per feature, one for the score column, and one dataset-level verdict."""
    from retrain_cli.serialize import jsonable

    def row(column: ColumnDrift, scope: str) -> ModelDriftMonitoring:
        return ModelDriftMonitoring(
            check_id=result.check_id,
            job_id=job_id,
            model_name=result.model,
            checked_at=result.checked_at,
            scope=scope,
            feature=column.feature,
            kind=column.kind,
            method=column.method,
            statistic=column.statistic,
            threshold=column.threshold,
            drifted=column.drifted,
            n_reference=column.n_reference,
            n_current=column.n_current,
            missing_rate_ref=column.missing_rate_ref,
            missing_rate_cur=column.missing_rate_cur,
            metrics=jsonable(column.metrics),
        )

    rows = [row(c, "feature") for c in result.features]
    if result.prediction:
        rows.append(row(result.prediction, "prediction"))
    n_drifted = sum(c.drifted for c in result.features)
    rows.append(
        ModelDriftMonitoring(
            check_id=result.check_id,
            job_id=job_id,
            model_name=result.model,
            checked_at=result.checked_at,
            scope="dataset",
            method=result.decision_method,
            statistic=result.drift_share,
            threshold=result.threshold,
            drifted=result.drifted,
            drift_share=result.drift_share,
            n_reference=result.n_reference,
            n_current=result.n_current,
            metrics={
                "n_features": len(result.features),
                "required_share": result.required_share,
                "n_drifted": n_drifted,
                "drifted_features": [c.feature for c in result.features if c.drifted],
                "prediction_drifted": bool(result.prediction and result.prediction.drifted),
                **({"undefined": NO_SHARE} if result.drift_share is None else {}),
            },
        )
    )
    session.add_all(rows)
    session.flush()
