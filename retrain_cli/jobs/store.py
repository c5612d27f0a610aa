"""Jobs in the database: apply validated specs by name, list, show, enable, trigger by hand."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from retrain_cli.core.choices import RunStatus
from retrain_cli.core.errors import (
    ConflictError,
    DatabaseError,
    NotFoundError,
    RetrainError,
    UsageError,
    did_you_mean,
    one_line,
)
from retrain_cli.db.models import AutoRetrainingConfig, AutoRetrainingJob, RetrainingJobHistory
from retrain_cli.db.queries import JOBS_LOCK, take_turns

if TYPE_CHECKING:
    from retrain_cli.jobs.spec import JobSpec

R = TypeVar("R")


@dataclass(frozen=True)
class Change:
    """One field of a job's stored spec that an apply changes (dotted: `drift.weighting`)."""

    field: str
    before: Any
    after: Any


@dataclass(frozen=True)
class ApplyOutcome:
    job: str
    action: str  # created | updated | unchanged
    changes: list[Change] = field(default_factory=list)  # of an update, field by field


@dataclass(frozen=True)
class EffectiveJob:
    """A job with every default resolved from `auto_retraining_config` for its model type and
    task."""

    id: int
    name: str
    model: str
    type: str
    enabled: bool
    schedule: str
    timezone: str
    priority: int
    drift_threshold: float
    performance_threshold: float | None  # None: the job's metric has no default threshold
    strategy: str
    primary_metric: str
    max_model_age_s: int | None
    document: dict[str, Any]  # the stored spec
    type_hyperparameters: dict[str, Any]  # the model type's defaults

    @cached_property
    def spec(self) -> JobSpec:
        """The typed spec, validated on first use (listing 10,000 jobs needs none of it)."""
        # here, not at import: `jobs due` and `jobs list` validate no spec (pydantic)
        from retrain_cli.jobs.spec import JobSpec

        return JobSpec.from_stored(self.document)

    @cached_property
    def hyperparameters(self) -> dict[str, Any]:
        """The type's defaults, then the job's; its `members` and `device` travel with them,
        and (but for a binary job, as before tasks) its task and number of classes."""
        merged = {**self.type_hyperparameters, **self.spec.hyperparameters}
        stored = self.spec.stored()
        if self.spec.members:
            merged["members"] = stored["members"]
        if stored["device"] != "auto":
            merged["device"] = stored["device"]
        if stored["task"] != "binary":
            merged["task"] = stored["task"]
        if self.spec.classes:
            merged["num_class"] = len(self.spec.classes)
        return merged


def apply_files(
    session: Session,
    files: Sequence[tuple[Path, Sequence[JobSpec]]],
    now: datetime,
    *,
    dry_run: bool = False,
) -> list[ApplyOutcome]:
    """Apply the jobs of every file in one transaction. Racing applies take turns, so the
    later one updates what the earlier created. With `dry_run`, say what would be created or
    changed, field by field, and write nothing."""
    take_turns(session.connection(), JOBS_LOCK)
    _require_configs(session)
    return [
        outcome
        for path, specs in files
        for outcome in _apply_jobs(session, specs, str(path.resolve()), now, dry_run)
    ]


def _apply_jobs(
    session: Session, specs: Sequence[JobSpec], source_file: str, now: datetime, dry_run: bool
) -> list[ApplyOutcome]:
    """Create or update each job by name; a job whose spec is unchanged is left untouched."""
    existing = {
        job.name: job
        for job in session.scalars(
            select(AutoRetrainingJob).where(AutoRetrainingJob.name.in_([s.name for s in specs]))
        )
    }
    outcomes = []
    for spec in specs:
        columns = _columns(spec)
        job = existing.get(spec.name)
        if job is None:
            if not dry_run:
                session.add(
                    AutoRetrainingJob(
                        **columns, source_file=source_file, created_at=now, updated_at=now
                    )
                )
            outcomes.append(ApplyOutcome(spec.name, "created"))
        elif all(getattr(job, key) == value for key, value in columns.items()):
            outcomes.append(ApplyOutcome(spec.name, "unchanged"))
        else:
            changes = _changes(job.spec, columns["spec"])
            if not dry_run:
                for key, value in columns.items():
                    setattr(job, key, value)
                job.source_file, job.updated_at = source_file, now
            outcomes.append(ApplyOutcome(spec.name, "updated", changes))
    if not dry_run:
        session.flush()
    return outcomes


def _changes(before: dict[str, Any], after: dict[str, Any]) -> list[Change]:
    """The stored spec's fields that differ, by dotted name, in name order."""
    old, new = _flattened(before), _flattened(after)
    return [
        Change(name, old.get(name), new.get(name))
        for name in sorted(old.keys() | new.keys())
        if old.get(name) != new.get(name)
    ]


def _flattened(document: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested document as `{dotted.name: value}` (lists are values)."""
    flat: dict[str, Any] = {}
    for key, value in document.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(_flattened(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _columns(spec: JobSpec) -> dict[str, Any]:
    """The job's row: the fields that queries filter or sort on get columns of their own."""
    stored = spec.stored()
    return {
        "name": spec.name,
        "model_name": spec.model,
        "model_type": stored["type"],
        "task": stored["task"],
        "enabled": spec.enabled,
        "schedule": spec.schedule,
        "timezone": spec.timezone,
        "priority": spec.priority,
        "drift_threshold": spec.thresholds.drift,
        "performance_threshold": spec.thresholds.performance,
        "strategy": stored.get("strategy"),
        "primary_metric": stored["primary_metric"],
        "timeout_s": spec.timeout,
        "max_model_age_s": spec.max_model_age,
        "triggers": stored["triggers"],
        "spec": stored,
    }


def _require_configs(session: Session) -> None:
    if session.scalar(select(AutoRetrainingConfig.id).limit(1)) is None:
        raise DatabaseError("auto_retraining_config is empty: run `retrain-cli db init`")


def get_job(session: Session, name: str) -> AutoRetrainingJob:
    job = session.scalar(select(AutoRetrainingJob).where(AutoRetrainingJob.name == name))
    if job is None:
        raise no_such_job(session, name)
    return job


def no_such_job(session: Session, name: str) -> NotFoundError:
    known = session.scalars(select(AutoRetrainingJob.name))
    return NotFoundError(
        f"no job named {name!r}{did_you_mean(name, known)} (see `retrain-cli jobs list`)"
    )


def list_jobs(session: Session, *, enabled_only: bool = False) -> list[AutoRetrainingJob]:
    query = select(AutoRetrainingJob).order_by(AutoRetrainingJob.name)
    if enabled_only:
        query = query.where(AutoRetrainingJob.enabled.is_(True))
    return list(session.scalars(query))


@dataclass(frozen=True)
class Deleted:
    job: str
    model: str
    runs_removed: int


def delete_job(session: Session, name: str, *, purge: bool) -> Deleted:
    """Delete a job that is not running. Its run history goes with it (the database cascades),
    so a job with history is deleted only with `purge`; the model's versions, artifacts, drift
    and performance results stay (they belong to the model: rollback keeps working)."""
    from sqlalchemy import func

    take_turns(session.connection(), JOBS_LOCK)
    job = session.scalar(
        select(AutoRetrainingJob).where(AutoRetrainingJob.name == name).with_for_update()
    )  # a retrain starting now waits for this transaction, then finds no job
    if job is None:
        raise no_such_job(session, name)
    runs = RetrainingJobHistory
    running = session.scalar(
        select(runs.id).where(runs.job_id == job.id, runs.status == RunStatus.RUNNING).limit(1)
    )
    if running is not None:
        raise ConflictError(f"job {name!r} is running (run {running}): let it finish first")
    count = session.scalar(select(func.count()).select_from(runs).where(runs.job_id == job.id))
    if count and not purge:
        raise ConflictError(
            f"job {name!r} has {count} runs: `retrain-cli jobs disable {name}` keeps it and its "
            f"history; `retrain-cli jobs delete {name} --purge` removes both"
        )
    session.delete(job)
    session.flush()
    return Deleted(name, job.model_name, int(count or 0))


def set_enabled(session: Session, name: str, enabled: bool, now: datetime) -> AutoRetrainingJob:
    job = get_job(session, name)
    if job.enabled != enabled:
        job.enabled, job.updated_at = enabled, now
    return job


def request_manual_run(
    session: Session, name: str, reason: str | None, now: datetime
) -> AutoRetrainingJob:
    """Record a manual trigger; `jobs due` reports the job due until a run starts after `now`."""
    job = get_job(session, name)
    job.manual_requested_at, job.manual_reason = now, reason
    return job


Configs = dict[tuple[str, str], AutoRetrainingConfig]


def load_configs(session: Session) -> Configs:
    """The defaults, keyed by model type and task."""
    return {(c.model_type, c.task): c for c in session.scalars(select(AutoRetrainingConfig))}


def effective_job(job: AutoRetrainingJob, configs: Configs) -> EffectiveJob:
    """Resolve the job's defaults from its model type's and task's config row. The row's
    performance threshold is one of its metric: a job judged by another has none by default."""
    config = configs.get((job.model_type, job.task))
    if config is None:
        raise DatabaseError(
            f"no auto_retraining_config row for {job.model_type} ({job.task}): run `db init`"
        )
    default_threshold = (
        config.performance_threshold if config.performance_metric == job.primary_metric else None
    )
    return EffectiveJob(
        id=job.id,
        name=job.name,
        model=job.model_name,
        type=job.model_type,
        enabled=job.enabled,
        schedule=job.schedule or config.schedule,
        timezone=job.timezone,
        priority=job.priority,
        drift_threshold=_first(job.drift_threshold, config.drift_threshold),
        performance_threshold=(
            default_threshold if job.performance_threshold is None else job.performance_threshold
        ),
        strategy=job.strategy or config.strategy,
        primary_metric=job.primary_metric,
        max_model_age_s=job.max_model_age_s or config.max_model_age_s,
        document=job.spec,
        type_hyperparameters=config.hyperparameters,
    )


def _first(value: float | None, default: float) -> float:
    return default if value is None else value


@dataclass(frozen=True)
class JobFailure:
    """A job whose check failed; other jobs of the same `--all` run still go on."""

    job: str
    error: str


def check_each(
    jobs: Sequence[EffectiveJob],
    evaluate: Callable[[EffectiveJob], R],
    record: Callable[[R, int], None],
    *,
    applies: Callable[[EffectiveJob], bool],
    every_enabled: bool,
) -> list[R | JobFailure]:
    """Evaluate each job and record its result; a job that fails, whatever the error, records
    nothing and the others go on. With `every_enabled` (`--all`), jobs the check does not apply
    to (no data source for it) are skipped rather than failed."""
    outcomes: list[R | JobFailure] = []
    for job in jobs:
        if every_enabled and not applies(job):
            continue
        try:
            result = evaluate(job)
        except RetrainError as exc:
            outcomes.append(JobFailure(job.name, str(exc)))
            continue
        except Exception as exc:  # a library's surprise with one job's data
            outcomes.append(
                JobFailure(job.name, f"unexpected {type(exc).__name__}: {one_line(exc)}")
            )
            continue
        record(result, job.id)
        outcomes.append(result)
    return outcomes


def select_jobs(session: Session, names: Sequence[str], every_enabled: bool) -> list[EffectiveJob]:
    """The named jobs (in order), or every enabled job; unknown names are an error."""

    if bool(names) == every_enabled:
        raise UsageError("name one or more jobs, or pass --all (not both)")
    configs = load_configs(session)
    if every_enabled:
        return [effective_job(job, configs) for job in list_jobs(session, enabled_only=True)]
    return [effective_job(get_job(session, name), configs) for name in names]
