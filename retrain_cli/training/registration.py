"""A trained model becomes a version: its files staged privately, then numbered, published,
recorded, promoted when the gate says so and its run closed, in one transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from retrain_cli.compute.interface import Backend
from retrain_cli.core import paths
from retrain_cli.core.choices import RunStatus
from retrain_cli.core.durations import utcnow
from retrain_cli.core.errors import ConflictError, DataError
from retrain_cli.core.serialize import jsonable
from retrain_cli.core.settings import Settings
from retrain_cli.data.training import Prepared
from retrain_cli.db.models import ModelVersionManagement
from retrain_cli.db.session import session_scope
from retrain_cli.drift import profile_store
from retrain_cli.jobs.store import EffectiveJob
from retrain_cli.statistics import performance
from retrain_cli.store import artifacts, remote
from retrain_cli.trainers.base import Trainer
from retrain_cli.training import gate, history
from retrain_cli.training.evaluation import Champion
from retrain_cli.training.slots import Heartbeat
from retrain_cli.versions import registry
from retrain_cli.versions.rollouts import state as rollouts


@dataclass(frozen=True)
class Evaluated:
    """What the gate saw: the challenger's metrics, the champion it was compared with (and the
    parent an incremental run started from), and the decision."""

    prepared: Prepared[Any]
    metrics: performance.Evaluation
    champion: Champion | None
    parent: Champion | None
    decision: gate.GateDecision
    importance: dict[str, float] | None = None  # each feature's share (`training.importance`)


@dataclass(frozen=True)
class Registered:
    version: registry.VersionRef
    promoted: bool
    gate: gate.GateDecision


def stage(
    settings: Settings,
    job: EffectiveJob,
    trainer: Trainer,
    prepared: Prepared[Any],
    metrics: performance.Evaluation,
    backend: Backend[Any],
) -> Path:
    """Write the new version's files into a private staging directory: the trainer's own
    files, `metadata.json`, a sample of hold-out rows, the profile of its training data and
    the manifest of checksums."""
    staging = artifacts.staging_dir(settings.artifacts_dir, job.model)
    try:
        primary = trainer.save(staging)
        metadata = {
            "model": job.model,
            "model_type": job.type,
            "trainer": trainer.name,
            "job": job.name,
            "features": prepared.features,
            "categorical": prepared.categorical,
            "target": job.spec.target,
            "task": str(job.spec.task),
            "classes": job.spec.classes,
            "hyperparameters": job.hyperparameters,
            "strategy": job.strategy,
            "data_fingerprint": prepared.fingerprint,
            "holdout_metrics": metrics.values,
            "trained_at": utcnow().isoformat(),
        }
        artifacts.write_json(staging / "metadata.json", jsonable(metadata))
        # a few hold-out rows, for the preflight of a later promote or rollback
        prepared.holdout.features.head(registry.SAMPLE_ROWS).to_parquet(
            staging / registry.SAMPLE_FILE
        )
        _write_training_profile(staging, job, prepared, backend)
        artifacts.write_manifest(
            staging,
            primary,
            {
                "trainer": trainer.name,
                "model_type": job.type,
                "hyperparameters": job.hyperparameters,
            },
        )
    except BaseException:
        artifacts.discard(staging)
        raise
    return staging


def _write_training_profile(
    staging: Path, job: EffectiveJob, prepared: Prepared[Any], backend: Backend[Any]
) -> None:
    """The profile that `drift.reference: training` checks against. Training data the drift
    statistics cannot summarise leaves the version without one; the retrain goes on."""
    import pyarrow as pa

    try:
        profile = backend.profile_training(prepared, job.spec.drift.bins)
    except (DataError, pa.ArrowException):  # a feature with no values; categories of mixed types
        return
    artifacts.write_atomic(staging / profile_store.TRAINING_FILE, profile_store.encode(profile))


def register(
    engine: Engine,
    settings: Settings,
    heartbeat: Heartbeat,
    job: EffectiveJob,
    staging: Path,
    evaluated: Evaluated,
) -> Registered:
    """Number, publish and record the version, promote it if the gate says so, and close the
    run, all in one transaction; the published directory is removed again if it fails."""
    run_id, metrics, prepared = heartbeat.run_id, evaluated.metrics, evaluated.prepared
    champion, parent, decision = evaluated.champion, evaluated.parent, evaluated.decision
    manifest = staging / artifacts.MANIFEST
    digest, size = artifacts.sha256_file(manifest), manifest.stat().st_size
    store = settings.artifacts_store
    target: Path | None = None
    try:
        with session_scope(engine, check_schema=False) as session:
            heartbeat.fence(session)  # a run whose lease expired registers nothing
            registry.lock_active(session, job.model)  # numbering and switching, serialised
            database = database_key(engine)
            if store is None:
                artifacts.remove_unregistered(
                    paths.model_dir(settings.artifacts_dir, job.model),
                    database,
                    registry.artifact_dirs(session, job.model),
                )
            now = utcnow()
            trained = registry.Trained(
                model=job.model,
                model_type=job.type,
                job_id=job.id,
                strategy=job.strategy,
                parent_version=parent.version if parent else None,
                metrics={
                    **metrics.values,
                    "n_holdout": len(prepared.holdout.target),
                    "n_scored": metrics.n_samples,
                    "undefined": metrics.reasons,
                },
                hyperparameters=job.hyperparameters,
                data_fingerprint=prepared.fingerprint,
                sha256=digest,
                size_bytes=size,
                task=str(job.spec.task),
                importance=evaluated.importance,
            )
            version = registry.add_version(session, trained, settings.artifacts_root, now)
            if store is None:
                target = Path(version.artifact_path).parent
                artifacts.publish(staging, target, database)
            else:
                _upload(session, store, version, staging)
            decision = _promote(session, job, run_id, version, decision, champion, now)
            history.finish_run(
                session,
                run_id,
                RunStatus.SUCCEEDED,
                now,
                version_id=version.id,
                promoted=decision.promote,
                gate=jsonable(decision),
            )
    except IntegrityError as exc:
        if target is not None:
            artifacts.discard(target)
        raise ConflictError(
            f"another run registered a version of {job.model!r} at the same time: retry"
        ) from exc
    except BaseException:
        if target is not None and not staging.exists():
            artifacts.discard(target)
        raise
    if store is None:
        assert target is not None
        artifacts.registered(target)
    else:  # what was uploaded and verified is this host's copy too
        target = paths.version_dir(settings.artifacts_dir, job.model, version.version, digest)
        remote.keep(staging, target)
    described = registry.VersionRef(
        job.model, version.version, digest, remote.parent(version.artifact_path), version.metrics
    )
    return Registered(described, decision.promote, decision)


def _upload(session: Session, store: str, version: ModelVersionManagement, staging: Path) -> None:
    """Publish a version to a store, in the registering transaction: sweep what killed or
    refused uploads of the model left (`remote.sweep`), put every file, the manifest last,
    and read them back. A failure leaves its objects to the next registration's sweep: only
    the rows say what is published, and a commit whose answer was lost may have made them so."""
    model = version.model_name
    remote.sweep(store, model, registry.artifact_dirs(session, model), version.version)
    prefix = remote.parent(version.artifact_path)
    remote.upload(staging, prefix)
    remote.verify(staging, prefix)


def database_key(engine: Engine) -> str:
    """Which database a published directory belongs to, without its password."""
    import hashlib

    url = engine.url.render_as_string(hide_password=True)
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]


def _promote(
    session: Session,
    job: EffectiveJob,
    run_id: int,
    version: ModelVersionManagement,
    decision: gate.GateDecision,
    champion: Champion | None,
    now: datetime,
) -> gate.GateDecision:
    """Switch to the new version when the gate says so, unless the champion it was compared
    with is no longer active (then it stays registered, and the decision says why). With a
    rollout policy and a champion, the version becomes the rollout's candidate instead."""
    if not decision.promote:
        return decision
    policy = job.spec.rollout
    reason = "; ".join(decision.reasons)
    try:
        if policy is not None and policy.mode is not None and champion is not None:
            active = registry.active_version(session, job.model)
            if active is None or active.version != champion.version:
                raise ConflictError(f"v{champion.version} is no longer active")
            move = rollouts.start(
                session,
                policy,
                version,
                champion.version,
                now,
                reason=reason,
                job_id=job.id,
                run_id=run_id,
            )
            started = f"candidate of a {policy.mode} rollout at {move.to_weight:.0%} of traffic"
            return gate.GateDecision(False, [*decision.reasons, started], decision.values, True)
        registry.switch_active(
            session,
            version,
            expect_current=champion.version if champion else None,
            reason=reason,
            job_id=job.id,
            run_id=run_id,
            preflight=False,
        )
    except ConflictError as exc:
        return gate.GateDecision(False, [*decision.reasons, f"held: {exc}"], decision.values)
    return decision
