"""One drift check of a job: choose the mode, find or build the profile, compare
(`drift_compare`, `profile_check`), record. `drift.mode: auto` takes the exact mode while both
windows have at most `drift.exact_max_rows` rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from retrain_cli.compute.interface import Backend, Placed, Placement
from retrain_cli.compute.local import LOCAL, LocalPlacement
from retrain_cli.core.choices import Compute, DriftMode, DriftReference
from retrain_cli.core.errors import DataError
from retrain_cli.core.threads import thread_share
from retrain_cli.data import sources as datasource
from retrain_cli.data import streaming
from retrain_cli.data.columns import Columns
from retrain_cli.data.sources import file_source
from retrain_cli.drift import multivariate, profile_store
from retrain_cli.drift.compare import (
    DriftResult,
    DriftSettings,
    compare_windows,
    load_windows,
    weigh,
)
from retrain_cli.drift.profile_check import compare_with_profile
from retrain_cli.drift.rows import add_drift_check
from retrain_cli.jobs.store import JobFailure, check_each
from retrain_cli.versions.registry import active_version

if TYPE_CHECKING:
    import pyarrow as pa

    from retrain_cli.core.settings import Settings
    from retrain_cli.data.profile import Profile
    from retrain_cli.jobs.sections import MultivariateSpec
    from retrain_cli.jobs.store import EffectiveJob


def settings_for(job: EffectiveJob) -> DriftSettings:
    return DriftSettings(threshold=job.drift_threshold, **dict(job.spec.drift))


def columns_for(job: EffectiveJob) -> Columns:
    """The job's features, its predictions (the score, or each class's probability) and its
    target (a class label is categorical, a regression target numeric)."""
    spec = job.spec
    scores = list(spec.probability_columns.values()) or [spec.score_column]
    labels = [spec.target] if spec.task != "regression" else []
    return Columns(
        features=spec.features,
        categorical=[*spec.categorical, *labels],
        excluded=sorted(spec.special_columns),
        scores=scores,
        target=spec.target,
    )


def require_named_columns(job: EffectiveJob) -> None:
    """Without a feature list every column but the job's target, time and score is a feature,
    so a misspelt target would have the real label checked as one. The target and time column
    must be in one of the job's data sources (labels are often only in the training data); their
    schemas are read, not their rows. A query's columns are not known: nothing is checked."""
    spec = job.spec
    if spec.features is not None:
        return
    data = spec.data
    found: set[str] = set()
    roles = []
    for role, source in (
        ("train", data.train),
        ("reference", data.reference),
        ("current", data.current),
        ("predictions", data.predictions),
    ):
        if source is None:
            continue
        try:
            names = datasource.column_types(source, role)
        except DataError:  # a missing window is reported where it is read
            continue
        if names is None:
            return
        found.update(names)
        roles.append(role)
    # not the score column: it has a default, and a job with no predictions has none anywhere
    # (`perf check` refuses predictions without it, naming it)
    named = (("target", spec.target), ("time_column", spec.time_column))
    for role, name in named:
        if name and roles and name not in found:
            raise DataError(
                f"{role} {name!r} is not a column of the job's {', '.join(roles)} data: "
                "fix its name in the job file"
            )


def has_windows(job: EffectiveJob) -> bool:
    data = job.spec.data
    against_training = job.spec.drift.reference is DriftReference.TRAINING
    return data.current is not None and (data.reference is not None or against_training)


def evaluate_job(
    session: Session,
    settings: Settings,
    job: EffectiveJob,
    now: datetime,
    placement: Placement | None = None,
    threads: int = 0,
) -> DriftResult:
    """Compare the job's current window with its reference (nothing recorded but a profile
    built on the way); profiles live where `settings` keeps artifacts. A job with
    `compute: dask` counts its current window where `placement` says (on a Dask cluster when it
    can). With `drift.multivariate`, a domain classifier on `threads` threads joins the
    verdict. With a `schema:`, the current window is checked against the data contract too,
    where the window is counted."""
    placed = (placement or LocalPlacement()).for_drift(job)
    result = _compare(session, settings, job, now, placed, threads)
    contract, current = job.spec.contract, job.spec.data.current
    if contract is not None and current is not None:
        time_column = job.spec.time_column
        result.contract = placed.backend.check_contract(
            current, "current", contract, time_column, now
        )
    return result


def _compare(
    session: Session,
    settings: Settings,
    job: EffectiveJob,
    now: datetime,
    placed: Placed,
    threads: int,
) -> DriftResult:
    reference_source, current_source = job.spec.data.reference, job.spec.data.current
    if current_source is None or (reference_source is None and not _against_training(job)):
        raise DataError(f"job {job.name!r} needs data.reference and data.current to check drift")
    require_named_columns(job)
    kwargs: dict[str, Any] = {"model": job.model, "job": job.name, "now": now}
    wanted = job.spec.drift.multivariate
    if choose_mode(job) is DriftMode.EXACT:
        assert reference_source is not None
        reference, current = load_windows(reference_source, current_source)
        exact = compare_windows(reference, current, columns_for(job), settings_for(job), **kwargs)
        weigh_by_active(session, job, exact)
        if job.spec.compute is Compute.DASK:
            exact.compute_note = "the exact mode runs here; the profile mode counts on the cluster"
        if wanted is not None:
            samples = (
                multivariate.sample_table(reference, wanted.sample, seed=0),
                multivariate.sample_table(current, wanted.sample, seed=1),
            )
            exact.add_multivariate(_classify(samples, exact, wanted, threads))
        return exact
    backend, note = placed
    if _against_training(job):
        profile, described = profile_store.training(session, job.model, settings.artifacts_dir)
        hint = f"retrain {job.model!r} to profile its training data again"
    else:
        root = settings.artifacts_root
        profile, described = reference_profile(session, root, job, backend=backend)
        hint = f"rebuild it with `retrain-cli drift profile {job.name}`"
    result = compare_with_profile(
        profile,
        described,
        current_source,
        columns_for(job),
        settings_for(job),
        hint,
        backend=backend,
        **kwargs,
    )
    result.compute_note = note
    weigh_by_active(session, job, result)
    if wanted is not None:
        result.add_multivariate(_streamed_classifier(job, result, wanted, threads))
    return result


def weigh_by_active(session: Session, job: EffectiveJob, result: DriftResult) -> None:
    """Each feature's importance to the active version, and the verdict by it when the job
    asks (`compare.weigh`)."""
    active = active_version(session, job.model)
    if active is None:
        weigh(result, None, f"{job.model} has no active version")
    elif active.importance is None:
        weigh(result, None, f"{job.model} v{active.version} recorded no importance (retrain it)")
    else:
        weigh(result, active.importance, "")


def _streamed_classifier(
    job: EffectiveJob, result: DriftResult, wanted: MultivariateSpec, threads: int
) -> multivariate.Multivariate:
    """The domain classifier of a profile-mode check: both windows sampled in one streaming
    pass each (the reference's rows, or the training data's for `reference: training`)."""
    reference = job.spec.data.train if _against_training(job) else job.spec.data.reference
    current = job.spec.data.current
    assert reference is not None and current is not None
    names = [c.feature for c in result.features]
    numeric = [c.feature for c in result.features if c.kind == "numeric"]
    reference_sample, current_sample = (
        multivariate.sample_batches(
            streaming.iter_batches(source, role, names, numeric), wanted.sample, seed=seed
        )
        for seed, (source, role) in enumerate(((reference, "reference"), (current, "current")))
    )
    return _classify((reference_sample, current_sample), result, wanted, threads)


def _classify(
    samples: tuple[pa.Table, pa.Table],
    result: DriftResult,
    wanted: MultivariateSpec,
    threads: int,
) -> multivariate.Multivariate:
    """The domain classifier on the two windows' samples, over the check's features."""
    return multivariate.domain_classifier(
        *samples,
        [(c.feature, c.kind) for c in result.features],
        max_auc=wanted.max_auc,
        folds=wanted.folds,
        confidence=wanted.confidence,
        threads=threads,
    )


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
    session: Session,
    root: str,
    job: EffectiveJob,
    *,
    rebuild: bool = False,
    backend: Backend[Any] = LOCAL,
) -> tuple[Profile, dict[str, Any]]:
    """The job's stored profile of its reference window, built (by `backend`) and recorded
    when there is none, or when the window's files or the job's bins, features or
    categorical columns changed since."""
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
        profile = profile_store.read(recorded["path"], recorded["sha256"], hint)
        return profile, {**recorded, "built": False}
    profile = backend.profile(source, columns_for(job), job.spec.drift.bins)
    path, digest = profile_store.write_reference(root, job.model, job.name, profile)
    recorded = profile_store.record_reference(session, job.id, path, digest, profile, fingerprint)
    return profile, {**recorded, "built": True}


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
    compute: str = "local"  # where it was built: "local" or "dask"
    compute_note: str | None = None  # why a `compute: dask` job's profile was built here


def profile_jobs(
    session: Session,
    settings: Settings,
    jobs: Sequence[EffectiveJob],
    *,
    every_enabled: bool,
    placement: Placement | None = None,
) -> list[Profiled | JobFailure]:
    """Build and record each job's reference profile anew (where `placement` says: on a Dask
    cluster for a `compute: dask` job with a Parquet window); `--all` skips jobs without a
    reference window."""
    placement = placement or LocalPlacement()

    def build(job: EffectiveJob) -> Profiled:
        assert job.spec.data.reference is not None
        backend, note = placement.for_profile(job, job.spec.data.reference)
        profile, recorded = reference_profile(
            session, settings.artifacts_root, job, rebuild=True, backend=backend
        )
        return Profiled(
            job.name,
            job.model,
            recorded["path"],
            recorded["sha256"],
            profile.rows,
            len(profile.columns),
            profile.rank_error,
            backend.where,
            note,
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
    placement: Placement | None = None,
) -> list[DriftResult | JobFailure]:
    """Check and record each job (see `jobs.check_each`); `--all` skips jobs without both
    windows."""
    threads = thread_share({}, settings.max_concurrent_retrains)  # cores beside the retrains
    return check_each(
        jobs,
        lambda job: evaluate_job(session, settings, job, now, placement, threads=threads),
        lambda result, job_id: add_drift_check(session, result, job_id),
        applies=has_windows,
        every_enabled=every_enabled,
    )


# Column names of the ad hoc forms of `drift check` and `perf check`.

AD_HOC_COLUMNS = Columns(
    features=None,
    categorical=("y_true",),
    excluded=("ts", "y_true", "return"),
    scores=("y_score",),
    target="y_true",
)


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
        *load_windows(file_source(reference), file_source(current)),
        AD_HOC_COLUMNS,
        settings,
        model=model,
        job=None,
        now=now,
    )
    add_drift_check(session, result, job_id=None)
    return result
