"""Model versions: which is active, and switching it safely (promote, rollback, retire).

Every switch is one transaction that first locks the model's active row (a no-op UPDATE), so
concurrent switches of one model queue up on both backends, then compares, preflights, swaps,
and appends a `model_version_events` row. The partial unique index keeps one active version per
model even if code were wrong.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from retrain_cli.core import paths
from retrain_cli.core.choices import DEFAULT_METRIC, Task, VersionStatus
from retrain_cli.core.errors import ConflictError, DataError, NotFoundError, did_you_mean
from retrain_cli.core.notify import Event
from retrain_cli.core.serialize import jsonable
from retrain_cli.db.models import (
    SWITCH_EVENTS,
    AutoRetrainingJob,
    ModelVersionEvent,
    ModelVersionManagement,
)
from retrain_cli.db.queries import database_now
from retrain_cli.store import artifacts, remote
from retrain_cli.versions import changes

SAMPLE_FILE = "sample.parquet"
SAMPLE_ROWS = 256  # enough for a sequence model's window to score its last rows


def active_version(session: Session, model: str) -> ModelVersionManagement | None:
    """The model's active version, if it has one (the database allows at most one)."""
    return session.scalar(
        select(ModelVersionManagement).where(
            ModelVersionManagement.model_name == model,
            ModelVersionManagement.status == VersionStatus.ACTIVE,
        )
    )


def get_version(session: Session, model: str, version: int) -> ModelVersionManagement:
    row = session.scalar(
        select(ModelVersionManagement).where(
            ModelVersionManagement.model_name == model, ModelVersionManagement.version == version
        )
    )
    if row is None:
        known = session.scalar(
            select(ModelVersionManagement.id).where(ModelVersionManagement.model_name == model)
        )
        if known is None:
            raise no_such_model(session, model)
        raise NotFoundError(f"model {model!r} has no version {version} (see `versions list`)")
    return row


def list_versions(session: Session, model: str) -> list[ModelVersionManagement]:
    rows = list(
        session.scalars(
            select(ModelVersionManagement)
            .where(ModelVersionManagement.model_name == model)
            .order_by(ModelVersionManagement.version)
        )
    )
    if not rows:
        raise no_such_model(session, model)
    return rows


def judged_by(session: Session, versions: list[ModelVersionManagement]) -> str:
    """The metric the newest version's job judges by (its task's default when the job is
    gone): the one metric a listing of the versions shows."""
    newest = versions[-1]
    metric = session.scalar(
        select(AutoRetrainingJob.primary_metric).where(AutoRetrainingJob.id == newest.job_id)
    )
    return metric or DEFAULT_METRIC[Task(newest.task)]


def no_such_model(session: Session, model: str) -> NotFoundError:
    known = session.scalars(select(ModelVersionManagement.model_name).distinct())
    return NotFoundError(f"model {model!r} has no versions{did_you_mean(model, known)}")


def events(session: Session, model: str) -> list[ModelVersionEvent]:
    return list(
        session.scalars(
            select(ModelVersionEvent)
            .where(ModelVersionEvent.model_name == model)
            .order_by(ModelVersionEvent.at, ModelVersionEvent.id)
        )
    )


def active_at(session: Session, model: str, at: datetime) -> int | None:
    """The version that was active at `at`, from the audit log."""
    event = session.scalar(
        select(ModelVersionEvent)
        .where(
            ModelVersionEvent.model_name == model,
            ModelVersionEvent.at <= at,
            ModelVersionEvent.event.in_(SWITCH_EVENTS),
        )
        .order_by(ModelVersionEvent.at.desc(), ModelVersionEvent.id.desc())
        .limit(1)
    )
    return event.to_version if event else None


def previous_champion(session: Session, model: str, current: int) -> int | None:
    """The version that was champion before `current` became champion by promotion.

    Rollbacks are skipped, so rolling back twice goes back two champions, not back and forth.
    """
    event = session.scalar(
        select(ModelVersionEvent)
        .where(
            ModelVersionEvent.model_name == model,
            ModelVersionEvent.to_version == current,
            ModelVersionEvent.event == "promote",
        )
        .order_by(ModelVersionEvent.at.desc(), ModelVersionEvent.id.desc())
        .limit(1)
    )
    return event.from_version if event else None


@dataclass(frozen=True)
class Switch:
    model: str
    event: str
    from_version: int | None
    to_version: int
    actor: str
    reason: str | None
    at: datetime

    def events(self) -> list[Event]:
        """What operators are told once the switch is committed."""
        kind = "rollback" if self.event == "rollback" else "version_promoted"
        summary = (
            f"{self.model}: {self.event} v{self.from_version} -> v{self.to_version} by {self.actor}"
        )
        details = {"from": self.from_version, "to": self.to_version, "reason": self.reason}
        return [Event(kind, summary, self.at, None, self.model, details)]


def switch_active(
    session: Session,
    target: ModelVersionManagement,
    *,
    event: str = "promote",
    expect_current: int | None = None,
    actor: str | None = None,
    reason: str | None = None,
    job_id: int | None = None,
    run_id: int | None = None,
    preflight: bool = True,
    from_weight: float | None = None,
    details: dict[str, Any] | None = None,
    not_before: datetime | None = None,
) -> Switch:
    """Make `target` the active version in the caller's transaction; nothing changes if the
    active version is not `expect_current` (when given) or the preflight fails. A rollout's
    candidate promoted at the end of its steps passes its weight and its last analysis.

    The switch's time is taken once the lock is held (see `event_time`)."""
    model = target.model_name
    lock_active(session, model)  # `target` is read again: as committed now
    now = event_time(session, model, not_before)
    current = active_version(session, model)
    current_number = current.version if current else None
    if expect_current is not None and current_number != expect_current:
        who = f"v{current_number}" if current_number is not None else "no version"
        raise ConflictError(f"{model}: {who} is active, not v{expect_current}; nothing changed")
    if current is not None and current.id == target.id:
        raise ConflictError(f"{model} v{target.version} is already active")
    if preflight:
        check_artifact(target)
    if current is not None:
        current.status, current.retired_at = VersionStatus.RETIRED, now
        session.flush()  # before activating: the partial unique index checks each statement
    target.status, target.promoted_at, target.retired_at = VersionStatus.ACTIVE, now, None
    actor = actor or os_user()
    session.add(
        ModelVersionEvent(
            model_name=model,
            event=event,
            from_version=current_number,
            to_version=target.version,
            actor=actor,
            reason=reason,
            job_id=job_id,
            run_id=run_id,
            at=now,
            from_weight=from_weight,
            to_weight=None if from_weight is None else 1.0,
            details=details,
        )
    )
    session.flush()
    changes.changed(session, model)
    return Switch(model, event, current_number, target.version, actor, reason, now)


def event_time(session: Session, model: str, not_before: datetime | None = None) -> datetime:
    """The time of the model's next audit event, taken under `lock_active`: the database's clock
    (one clock for every host), and never before the model's last event. Events then carry
    times in the order they commit, so replaying the log by (time, id) agrees with the table.
    `not_before` is a time the caller evaluated at (a rollout tick's `--now`)."""
    last = session.scalar(
        select(func.max(ModelVersionEvent.at)).where(ModelVersionEvent.model_name == model)
    )
    return max(t for t in (database_now(session), last, not_before) if t is not None)


def lock_active(session: Session, model: str) -> None:
    """Take the model's write lock before reading: a lock on every version row of the model on
    PostgreSQL, the database write lock on SQLite. Every row, not the active one: a waiter for
    the active row would find it retired when it wakes, lock nothing, and go on unserialised.
    Objects the session read before the lock are expired, so that nothing stale is written."""
    session.execute(
        update(ModelVersionManagement)
        .where(ModelVersionManagement.model_name == model)
        .values(status=ModelVersionManagement.status)
    )
    session.expire_all()


@dataclass(frozen=True)
class VersionRef:
    """A registered version, as a retrain reports it."""

    model: str
    version: int
    sha256: str  # of its manifest
    artifact: str  # its published directory
    metrics: dict[str, Any]


@dataclass(frozen=True)
class Trained:
    """A trained model whose files are staged, before it has a version number."""

    model: str
    model_type: str
    job_id: int
    strategy: str | None
    parent_version: int | None
    metrics: dict[str, Any]
    hyperparameters: dict[str, Any]
    data_fingerprint: dict[str, Any]
    sha256: str  # of the staged manifest
    size_bytes: int
    task: str = "binary"
    importance: dict[str, float] | None = None  # each feature's share (`training.importance`)


def add_version(
    session: Session, trained: Trained, root: str, now: datetime
) -> ModelVersionManagement:
    """Number the model's next version (call under `lock_active`) and record it `registered`,
    its files expected in its own directory under `root`, a folder or a store's prefix."""

    latest = session.scalar(
        select(func.max(ModelVersionManagement.version)).where(
            ModelVersionManagement.model_name == trained.model
        )
    )
    number = (latest or 0) + 1
    if paths.is_url(root):
        directory = paths.version_key(root, trained.model, number, trained.sha256)
    else:
        directory = str(paths.version_dir(Path(root), trained.model, number, trained.sha256))
    version = ModelVersionManagement(
        model_name=trained.model,
        version=number,
        model_type=trained.model_type,
        task=trained.task,
        job_id=trained.job_id,
        status=VersionStatus.REGISTERED,
        artifact_path=f"{directory}/{artifacts.MANIFEST}",
        sha256=trained.sha256,
        size_bytes=trained.size_bytes,
        strategy=trained.strategy,
        parent_version=trained.parent_version,
        metrics=jsonable(trained.metrics),
        hyperparameters=jsonable(trained.hyperparameters),
        data_fingerprint=jsonable(trained.data_fingerprint),
        importance=trained.importance,
        created_at=now,
    )
    session.add(version)
    session.flush()
    return version


def artifact_dirs(session: Session, model: str) -> set[str]:
    """The names of the directories (`<version>-<digest>`) `model`'s versions are recorded in."""
    recorded = session.scalars(
        select(ModelVersionManagement.artifact_path).where(
            ModelVersionManagement.model_name == model
        )
    )
    return {path.rsplit("/", 2)[-2] for path in recorded}


def promote(session: Session, model: str, version: int, **options: Any) -> Switch:
    return switch_active(session, get_version(session, model, version), **options)


def rollback(session: Session, model: str, to: int | None = None, **options: Any) -> Switch:
    """Return to the previous champion (or to version `to`)."""
    lock_active(session, model)
    current = active_version(session, model)
    if to is None:
        if current is None:
            raise ConflictError(f"{model} has no active version to roll back from")
        to = previous_champion(session, model, current.version)
        if to is None:
            raise ConflictError(f"{model} v{current.version} has no previous champion")
    return switch_active(
        session,
        get_version(session, model, to),
        event="rollback",
        expect_current=current.version if current else None,
        **options,
    )


def retire(session: Session, model: str, version: int, now: datetime) -> ModelVersionManagement:
    """Retire a version by hand; never the active one nor the one a rollback would return to."""
    lock_active(session, model)
    target = get_version(session, model, version)
    current = active_version(session, model)
    if target.status == VersionStatus.ACTIVE:
        raise ConflictError(f"{model} v{version} is active: promote another version first")
    if target.status == VersionStatus.CANDIDATE:
        raise ConflictError(f"{model} v{version} is in rollout: `versions rollout {model} --abort`")
    if current is not None and previous_champion(session, model, current.version) == version:
        raise ConflictError(f"{model} v{version} is the rollback target of v{current.version}")
    target.status, target.retired_at = VersionStatus.RETIRED, now
    return target


def check_artifact(version: ModelVersionManagement) -> None:
    """Preflight: the files exist, their checksums match (a store's files are downloaded and
    checked every time), the model loads, and it scores the sample stored with it to finite
    probabilities (or values, for regression), as its task predicts."""
    import numpy as np

    label = f"{version.model_name} v{version.version}"
    # a store's version is read from the store every time: a tampered object fails here
    with remote.fetched(version.artifact_path, version.sha256, label) as directory:
        try:
            manifest = artifacts.verify(directory, version.sha256)
            # here, not at import: only a preflight loads a model (numpy, LightGBM, PyTorch)
            from retrain_cli.trainers.families import load_trainer

            trainer = load_trainer(version.model_type, directory, manifest)
            sample = _sample(directory)
            scores = np.asarray(trainer.predict(sample), dtype=np.float64)
        except Exception as exc:
            raise DataError(f"preflight of {label} failed: {' '.join(str(exc).split())}") from exc
    # a sequence model leaves the rows before its first full window unscored (NaN), by design
    expected = 2 if version.task == "multiclass" else 1
    if scores.ndim != expected or len(scores) != len(sample):
        raise DataError(f"preflight of {label} failed: it does not predict a {version.task} task")
    rows = np.asarray(np.isfinite(scores).reshape(len(scores), -1).all(axis=1))
    finite = scores[rows]
    if not rows[-1:].all() or not finite.size:
        raise DataError(f"preflight of {label} failed: the sample's last rows scored NaN")
    if version.task != "regression" and ((finite < 0) | (finite > 1)).any():
        raise DataError(f"preflight of {label} failed: probabilities outside [0, 1]")


def _sample(directory: Path) -> Any:
    import pandas as pd

    path = directory / SAMPLE_FILE
    if not path.is_file():
        raise DataError(f"{path} is missing")
    return pd.read_parquet(path)


def os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
