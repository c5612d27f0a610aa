"""`jobs backfill`: the drift and performance checks a job would have recorded over past windows
of its data, so that a new job has a history and a chart from its first day.

The windows are `every` long, aligned to multiples of `every` since the Unix epoch (whole UTC
days for `1d`), from the one holding `since` to the last that has ended by `until`. Each is cut
from the job's `data.current` and `data.predictions` by its `time_column` and checked as cron
would have checked it then (`checked_at` is the window's end), in the exact mode against the
job's reference, with the active version's baseline and importance. Each window commits on its
own; the check tables' unique key per job, window and kind makes a second run (or a racing
one) skip what is recorded, so backfilling is idempotent and a killed one resumes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from retrain_cli.core.choices import DriftReference, RowKind
from retrain_cli.core.errors import DataError, RetrainError, UsageError, one_line
from retrain_cli.data import predictions
from retrain_cli.data.sources import read_frame, read_table
from retrain_cli.db.models import ModelDriftMonitoring, ModelPerformanceTracking
from retrain_cli.db.session import session_scope
from retrain_cli.drift import check as drift_check
from retrain_cli.drift.compare import compare_windows, importing_scipy
from retrain_cli.drift.rows import add_drift_check
from retrain_cli.jobs.store import EffectiveJob, effective_job, get_job, load_configs
from retrain_cli.performance import check as perf_check
from retrain_cli.performance import window as perf_window
from retrain_cli.performance.rows import add_performance_check

if TYPE_CHECKING:
    import numpy as np

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_WINDOWS = 10_000  # a typo (`--every 1s` over a year) is refused, not run
Span = tuple[datetime, datetime]


def windows(since: datetime, until: datetime, every: timedelta) -> list[Span]:
    """The aligned windows from the one holding `since` to the last ended by `until`.

    >>> first, last = datetime(2026, 1, 1, 12, tzinfo=UTC), datetime(2026, 1, 4, 6, tzinfo=UTC)
    >>> [(a.day, b.day) for a, b in windows(first, last, timedelta(days=1))]
    [(1, 2), (2, 3), (3, 4)]
    """
    start = EPOCH + every * ((since - EPOCH) // every)
    count = (until - start) // every
    if count > MAX_WINDOWS:
        raise UsageError(f"{count} windows: at most {MAX_WINDOWS} (a longer --every)")
    return [(start + every * i, start + every * (i + 1)) for i in range(count)]


@dataclass
class Checked:
    """One window's outcome for one kind of check."""

    # drifted or ok (drift), degraded or ok (performance); recorded (before, skipped), no rows,
    # error (nothing recorded), not checked (the job has no data for it)
    outcome: str
    value: float | None = None  # the drift share, or the primary metric's value
    detail: str | None = None


@dataclass
class Window:
    start: datetime
    end: datetime
    drift: Checked
    performance: Checked


@dataclass
class Backfill:
    job: str
    model: str
    every_s: float
    metric: str
    windows: list[Window] = field(default_factory=list)

    @property
    def errors(self) -> list[str]:
        return [
            f"{w.start:%Y-%m-%d %H:%M} {kind}: {c.detail}"
            for w in self.windows
            for kind, c in (("drift", w.drift), ("performance", w.performance))
            if c.outcome == "error"
        ]

    @property
    def recorded(self) -> int:
        """Checks recorded by this run (a window's drift and performance count one each)."""
        done = ("drifted", "ok", "degraded")
        return sum(c.outcome in done for w in self.windows for c in (w.drift, w.performance))


def backfill(
    engine: Engine, job_name: str, since: datetime, until: datetime, every: timedelta
) -> Backfill:
    """Check and record each past window of the job not recorded yet (see the module)."""
    with session_scope(engine) as session:
        job = effective_job(get_job(session, job_name), load_configs(session))
    time_column = job.spec.time_column
    if time_column is None:
        raise DataError(f"job {job.name!r} has no time_column to cut its data into windows")
    spans = windows(since, until, every)
    result = Backfill(
        job.name, job.model, every.total_seconds(), perf_window.settings_for(job).primary_metric
    )
    drift = _drift_checker(engine, job, time_column)
    perf = _performance_checker(engine, job, time_column)
    for span in spans:
        result.windows.append(Window(span[0], span[1], drift(span), perf(span)))
    return result


Checker = Callable[[Span], Checked]


def _not_checked(why: str) -> Checker:
    return lambda span: Checked("not checked", detail=why)


def _cut(times: np.ndarray[Any, Any], span: Span) -> np.ndarray[Any, Any]:
    import numpy as np

    start, end = (np.datetime64(t.replace(tzinfo=None), "ns") for t in span)
    mask: np.ndarray[Any, Any] = (times >= start) & (times < end)
    return mask


def _times(frame_column: Any, name: str) -> np.ndarray[Any, Any]:
    """The time column as UTC nanoseconds without zone (text parsed as the checks parse it)."""
    import pandas as pd

    frame = pd.DataFrame({name: frame_column})
    stamps = predictions.timestamps(frame, name).dt.tz_convert("UTC").dt.tz_localize(None)
    values: np.ndarray[Any, Any] = stamps.to_numpy(dtype="datetime64[ns]")
    return values


def _drift_checker(engine: Engine, job: EffectiveJob, time_column: str) -> Checker:
    data = job.spec.data
    against_training = job.spec.drift.reference is DriftReference.TRAINING
    reference_source = data.train if against_training else data.reference
    if data.current is None or reference_source is None:
        return _not_checked("no data.reference and data.current")
    drift_check.require_named_columns(job)
    with importing_scipy():
        reference = read_table(reference_source, "reference")
        current = read_table(data.current, "current")
    if time_column not in current.column_names:
        raise DataError(f"current data has no time_column {time_column!r}")
    times = _times(current.column(time_column).to_pandas(), time_column)
    columns, settings = drift_check.columns_for(job), drift_check.settings_for(job)
    with session_scope(engine) as session:
        done = set(_drift_windows(session, job.id))

    def check(span: Span) -> Checked:
        if span in done:
            return Checked("recorded")
        import pyarrow as pa

        rows = current.filter(pa.array(_cut(times, span)))
        if rows.num_rows == 0:
            return Checked("no rows")
        try:
            found = compare_windows(
                reference, rows, columns, settings, model=job.model, job=job.name, now=span[1]
            )
            with session_scope(engine) as session:
                drift_check.weigh_by_active(session, job, found)
                add_drift_check(session, found, job.id, backfilled=span)
        except IntegrityError:
            return Checked("recorded")  # a racing backfill recorded it first
        except RetrainError as exc:
            return Checked("error", detail=one_line(exc))
        share = found.weighted_share if found.weighted_share is not None else found.drift_share
        return Checked("drifted" if found.drifted else "ok", share)

    return check


def _performance_checker(engine: Engine, job: EffectiveJob, time_column: str) -> Checker:
    source = job.spec.data.predictions
    if source is None:
        return _not_checked("no data.predictions")
    frame = read_frame(source, "predictions")
    if time_column not in frame.columns:
        raise DataError(f"predictions have no time_column {time_column!r}")
    times = _times(frame[time_column], time_column)
    columns, settings = perf_window.columns_for(job), perf_window.settings_for(job)
    with session_scope(engine) as session:
        done = set(_performance_windows(session, job.id))

    def check(span: Span) -> Checked:
        if span in done:
            return Checked("recorded")
        rows = frame[_cut(times, span)]
        if rows.empty:
            return Checked("no rows")
        try:
            with session_scope(engine) as session:
                found = perf_check.evaluate(
                    session, rows, columns, settings, job.model, job.name, span[1]
                )
                found.window_start, found.window_end = span
                found.change_points = []  # a point belongs to the whole series, not a window
                add_performance_check(session, found, job.id, backfilled=True)
        except IntegrityError:
            return Checked("recorded")
        except RetrainError as exc:
            return Checked("error", detail=one_line(exc))
        value = found.metrics.get(settings.primary_metric)
        return Checked("degraded" if found.degraded else "ok", value)

    return check


def _drift_windows(session: Session, job_id: int) -> list[Span]:
    table = ModelDriftMonitoring
    rows = session.execute(
        select(table.window_start, table.window_end).where(
            table.job_id == job_id, table.backfilled, table.scope == "dataset"
        )
    )
    return [(a, b) for a, b in rows if a is not None and b is not None]


def _performance_windows(session: Session, job_id: int) -> list[Span]:
    table = ModelPerformanceTracking
    rows = session.execute(
        select(table.window_start, table.window_end)
        .where(table.job_id == job_id, table.backfilled, table.kind == RowKind.CHECKED)
        .distinct()
    )
    return [(a, b) for a, b in rows if a is not None and b is not None]
