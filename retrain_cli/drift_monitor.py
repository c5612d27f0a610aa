"""One drift check: compare every feature (and the score) of two windows, decide, record.

In the exact mode both windows are read whole as Arrow tables (Parquet is never converted to
pandas here) and the columns are compared on a thread pool (Arrow and numpy release the GIL). In
the profile mode the reference is a stored profile (`profiles`) and the current window is
streamed through it in record batches. `drift.mode: auto` takes the exact mode while both
windows have at most `drift.exact_max_rows` rows.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from retrain_cli import datasource, drift, profile_store, profiles
from retrain_cli.choices import Compute, DriftMode, DriftReference
from retrain_cli.cluster import Cluster, run_all
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
    from retrain_cli.profiles import Profile
    from retrain_cli.settings import Settings


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
    mode: str = DriftMode.EXACT
    profile: dict[str, Any] | None = None  # the profile a profile-mode check used
    compute: str = "local"  # where the current window was counted
    compute_note: str | None = None  # why a `compute: dask` job ran here

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
    data = job.spec.data
    against_training = job.spec.drift.reference is DriftReference.TRAINING
    return data.current is not None and (data.reference is not None or against_training)


def evaluate_job(
    session: Session, root: Path, job: EffectiveJob, now: datetime, cluster: Cluster | None = None
) -> DriftResult:
    """Compare the job's current window with its reference (nothing recorded but a profile
    built on the way); `root` is the artifacts directory, where profiles live. A job with
    `compute: dask` counts its current window on `cluster` when it can (see `cluster.py`)."""
    reference_source, current_source = job.spec.data.reference, job.spec.data.current
    if current_source is None or (reference_source is None and not _against_training(job)):
        raise DataError(f"job {job.name!r} needs data.reference and data.current to check drift")
    kwargs: dict[str, Any] = {"model": job.model, "job": job.name, "now": now}
    if choose_mode(job) is DriftMode.EXACT:
        assert reference_source is not None
        reference, current = _load_windows(reference_source, current_source)
        exact = compare_windows(reference, current, columns_for(job), settings_for(job), **kwargs)
        if job.spec.compute is Compute.DASK:
            exact.compute_note = "the exact mode runs here; the profile mode counts on the cluster"
        return exact
    if _against_training(job):
        profile, described = profile_store.training(session, job.model)
        hint = f"retrain {job.model!r} to profile its training data again"
    else:
        profile, described = reference_profile(session, root, job)
        hint = f"rebuild it with `retrain-cli drift profile {job.name}`"
    note = None
    if job.spec.compute is Compute.DASK and cluster is not None:
        note = cluster.local_reason()
    on_cluster = cluster if job.spec.compute is Compute.DASK and note is None else None
    result = compare_with_profile(
        profile,
        described,
        current_source,
        columns_for(job),
        settings_for(job),
        hint,
        cluster=on_cluster,
        **kwargs,
    )
    result.compute_note = note
    return result


def _against_training(job: EffectiveJob) -> bool:
    return job.spec.drift.reference is DriftReference.TRAINING


def choose_mode(job: EffectiveJob) -> DriftMode:
    """The job's `drift.mode`; auto is exact unless a window has more than `exact_max_rows`
    rows by its Parquet metadata (CSV and SQL windows count as small), or the reference is
    the training data (only ever profiled)."""
    spec = job.spec.drift
    if _against_training(job):
        return DriftMode.PROFILE
    if spec.mode is not DriftMode.AUTO:
        return spec.mode
    sources = {"reference": job.spec.data.reference, "current": job.spec.data.current}
    rows = [datasource.row_count(s, role) for role, s in sources.items() if s is not None]
    large = any(n is not None and n > spec.exact_max_rows for n in rows)
    return DriftMode.PROFILE if large else DriftMode.EXACT


def reference_profile(
    session: Session, root: Path, job: EffectiveJob, *, rebuild: bool = False
) -> tuple[Profile, dict[str, Any]]:
    """The job's stored profile of its reference window, built (and recorded) when there is
    none, or when the window's files or the job's bins, features or categorical columns
    changed since."""
    source = job.spec.data.reference
    if source is None:
        raise DataError(f"job {job.name!r} has no data.reference to profile")
    fingerprint = {
        **datasource.source_fingerprint(source, "reference"),
        "bins": job.spec.drift.bins,
        "features": job.spec.features,
        "categorical": job.spec.categorical,
    }
    recorded = profile_store.recorded_reference(session, job.id)
    current = recorded is not None and recorded["source"] == fingerprint
    if recorded is not None and current and not rebuild:
        hint = f"rebuild it with `retrain-cli drift profile {job.name}`"
        profile = profile_store.read(Path(recorded["path"]), recorded["sha256"], hint)
        return profile, {**recorded, "built": False}
    profile = profile_window(source, columns_for(job), job.spec.drift.bins)
    path, digest = profile_store.write_reference(root, job.model, job.name, profile)
    recorded = profile_store.record_reference(session, job.id, path, digest, profile, fingerprint)
    return profile, {**recorded, "built": True}


def profile_window(source: DataSource, columns: Columns, bins: int) -> Profile:
    """Profile a reference window: a Parquet file or dataset one column at a time, a CSV file
    or query whole."""
    if datasource.is_parquet(source):
        dataset = datasource.parquet_dataset(source, "reference")
        names = _profiled_names(dataset.schema.names, columns)
        kinds = {name: _kind(dataset.schema.field(name).type, name, columns) for name in names}
        rows = dataset.count_rows()
        if rows == 0:
            raise DataError(f"reference data {datasource.describe(source)} is empty")
        return profiles.build(
            lambda name: dataset.to_table(columns=[name]).column(0),
            kinds,
            bins,
            rows,
            "reference window",
        )
    return profile_table(read_table(source, "reference"), columns, bins, "reference window")


def profile_table(table: pa.Table, columns: Columns, bins: int, built_from: str) -> Profile:
    names = _profiled_names(table.column_names, columns)
    kinds = {name: _kind(table.schema.field(name).type, name, columns) for name in names}
    return profiles.build(table.column, kinds, bins, table.num_rows, built_from)


def _profiled_names(present: Sequence[str], columns: Columns) -> list[str]:
    """The features of a reference window, and its score column when it has one."""
    if columns.features is not None:
        names = list(columns.features)
        missing = [name for name in names if name not in present]
        if missing:
            raise DataError(f"feature {missing[0]!r} is missing from the reference window")
    else:
        skip = {*columns.excluded, columns.score}
        names = [c for c in present if c not in skip]
    if not names:
        raise DataError("no feature columns to compare")
    if columns.score and columns.score in present and columns.score not in names:
        names.append(columns.score)
    return names


@dataclass
class Profiled:
    """A reference profile that `drift profile` built and recorded."""

    job: str
    model: str
    path: str
    sha256: str
    rows: int
    columns: int
    rank_error: float


def profile_jobs(
    session: Session, root: Path, jobs: Sequence[EffectiveJob], *, every_enabled: bool
) -> list[Profiled | JobFailure]:
    """Build and record each job's reference profile anew; `--all` skips jobs without a
    reference window."""

    def build(job: EffectiveJob) -> Profiled:
        profile, recorded = reference_profile(session, root, job, rebuild=True)
        return Profiled(
            job.name,
            job.model,
            recorded["path"],
            recorded["sha256"],
            profile.rows,
            len(profile.columns),
            profile.rank_error,
        )

    return check_each(
        jobs,
        build,
        lambda result, job_id: None,
        applies=lambda job: job.spec.data.reference is not None,
        every_enabled=every_enabled,
    )


def check_jobs(
    session: Session,
    settings: Settings,
    jobs: Sequence[EffectiveJob],
    now: datetime,
    *,
    every_enabled: bool,
) -> list[DriftResult | JobFailure]:
    """Check and record each job (see `jobs.check_each`); `--all` skips jobs without both
    windows."""
    with Cluster(settings.dask_scheduler, settings.dask_timeout_s) as cluster:
        return check_each(
            jobs,
            lambda job: evaluate_job(session, settings.artifacts_dir, job, now, cluster),
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
    with _importing_scipy():
        return read_table(reference, "reference"), read_table(current, "current")


@contextlib.contextmanager
def _importing_scipy() -> Iterator[None]:
    """Import scipy.stats (the p-values) on a thread while the windows are read: the readers
    release the GIL, the import would otherwise stall the column threads."""
    importer = threading.Thread(target=importlib.import_module, args=("scipy.stats",))
    importer.start()
    try:
        yield
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
    return _result(
        compared,
        has_score,
        settings,
        (reference.num_rows, current.num_rows),
        model=model,
        job=job,
        now=now,
    )


def compare_with_profile(
    profile: Profile,
    described: dict[str, Any],
    current_source: DataSource,
    columns: Columns,
    settings: DriftSettings,
    hint: str,
    *,
    model: str,
    job: str | None,
    now: datetime,
    cluster: Cluster | None = None,
) -> DriftResult:
    """Drift of the current window against a profile, streaming the window once in record
    batches (nothing recorded). `hint` says how to make a profile that fits the job again. With
    a `cluster`, each Parquet file or row group is counted by a task there and the counts and
    sketches are merged here."""
    present = datasource.column_types(current_source, "current")
    features = _profile_features(profile, columns, present, hint)
    score = columns.score
    has_score = bool(score and score in profile.columns and (present is None or score in present))
    names = [*features, *([score] if has_score and score else [])]
    kinds = {name: profile.columns[name].kind for name in names}
    for name in names:
        arrow_type = present.get(name) if present is not None else None
        if arrow_type is not None and str(arrow_type) != "null":
            kind = _kind(arrow_type, name, columns)
            if kind != kinds[name]:
                raise DataError(
                    f"feature {name!r} is {kinds[name]} in the profile but {kind} in the "
                    f"current window: {hint}"
                )
    ordered = settings.all_statistics or settings.method in drift.ORDERED_STATISTICS
    summary = profiles.WindowSummary(profile, names, ordered=ordered)
    numeric = [name for name in names if kinds[name] == "numeric"]
    parts = datasource.partitions(current_source, "current", names) if cluster else None
    with _importing_scipy():
        if cluster is not None and parts is not None:
            for state in run_all(
                cluster.client(),
                profiles.summarize,
                parts,
                {"profile": profile},
                names=names,
                ordered=ordered,
                role="current",
            ):
                summary.merge(state)
        else:
            with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
                for batch in datasource.iter_batches(current_source, "current", names, numeric):
                    summary.add(batch, pool)
    if summary.rows == 0:
        raise DataError(f"current data {datasource.describe(current_source)} is empty")
    compared = []
    for name in names:
        if summary.n(name) == 0:
            raise DataError(f"feature {name!r} has no values in the current window (all missing)")
        reference = profile.columns[name]
        compared.append(
            _decided(
                name,
                kinds[name],
                settings,
                (reference.n, summary.n(name)),
                (reference.missing / reference.rows, summary.missing[name] / summary.rows),
                partial(summary.compare, name),
            )
        )
    result = _result(
        compared,
        has_score,
        settings,
        (profile.rows, summary.rows),
        model=model,
        job=job,
        now=now,
    )
    result.mode = DriftMode.PROFILE
    result.profile = {
        **described,
        "built_from": profile.built_from,
        "kll_k": profile.kll_k,
        "rank_error": profile.rank_error,
        "max_categories": profile.max_categories,
        "peak_batch_rows": summary.peak_rows,
    }
    result.compute = "dask" if cluster is not None and parts is not None else "local"
    return result


def _profile_features(
    profile: Profile,
    columns: Columns,
    present: dict[str, pa.DataType | None] | None,
    hint: str,
) -> list[str]:
    """The features to compare: the job's, or the profile's; each one in the profile and in the
    current window, and (without a feature list) no column of the window the profile lacks."""
    skip = {*columns.excluded, columns.score}
    names = (
        list(columns.features)
        if columns.features is not None
        else [c for c in profile.columns if c not in skip]
    )
    for name in names:
        if name not in profile.columns:
            raise DataError(
                f"feature {name!r} is not in the profile ({profile.built_from}): {hint}"
            )
        if present is not None and name not in present:
            raise DataError(f"feature {name!r} is missing from the current window")
    if columns.features is None and present is not None:
        added = [c for c in present if c not in profile.columns and c not in skip]
        if added:
            raise DataError(
                f"column {added[0]!r} of the current window is not in the profile "
                f"({profile.built_from}): {hint}, or list the job's features"
            )
    if not names:
        raise DataError("no feature columns to compare")
    return names


def _result(
    compared: list[ColumnDrift],
    has_score: bool,
    settings: DriftSettings,
    rows: tuple[int, int],
    *,
    model: str,
    job: str | None,
    now: datetime,
) -> DriftResult:
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
        n_reference=rows[0],
        n_current=rows[1],
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
    compute: Callable[[], tuple[dict[str, Any], drift.Histogram]]
    if kind == "numeric":
        ref, missing_ref = numeric_values(reference.column(name), name, "reference")
        cur, missing_cur = numeric_values(current.column(name), name, "current")
        n_reference, n_current = ref.size, cur.size
        method = drift.decision_method(settings.method, kind)
        ordered = settings.all_statistics or method in drift.ORDERED_STATISTICS
        compute = partial(drift.numeric_drift, ref, cur, settings.bins, ordered=ordered)
    else:
        ref_counts, missing_ref = category_counts(reference.column(name), name, "reference")
        cur_counts, missing_cur = category_counts(current.column(name), name, "current")
        n_reference, n_current = sum(ref_counts.values()), sum(cur_counts.values())
        compute = partial(drift.categorical_drift, ref_counts, cur_counts)
    return _decided(
        name, kind, settings, (n_reference, n_current), (missing_ref, missing_cur), compute
    )


def _decided(
    name: str,
    kind: str,
    settings: DriftSettings,
    counts: tuple[int, int],
    missing: tuple[float, float],
    compute: Callable[[], tuple[dict[str, Any], drift.Histogram]],
) -> ColumnDrift:
    """One column's verdict from its statistics (`compute`), its value counts in the two
    windows and their missing rates."""
    method = drift.decision_method(settings.method, kind)
    (n_reference, n_current), (missing_ref, missing_cur) = counts, missing
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
                "mode": result.mode,
                "compute": result.compute,
                **({"compute_note": result.compute_note} if result.compute_note else {}),
                **({"profile": result.profile} if result.profile is not None else {}),
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
