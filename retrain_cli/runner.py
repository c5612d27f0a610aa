"""One retrain: slot -> running row -> load -> train -> evaluate -> stage -> register + gate.

Each step that must be visible to other processes commits on its own (the skipped or running
row, heartbeats); registering the version, promoting it and closing the run happen in one
transaction, so a failure or a kill never leaves a version without its artifact, an artifact
without its version, or a half-promoted model.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError

from retrain_cli import artifacts, gate, history, performance, registry
from retrain_cli.db.models import ModelVersionManagement
from retrain_cli.db.session import session_scope
from retrain_cli.durations import utcnow
from retrain_cli.errors import BusyError, ConflictError, RetrainError
from retrain_cli.jobs import EffectiveJob, effective_job, get_job, load_configs
from retrain_cli.semaphore import FileSemaphore, Semaphore
from retrain_cli.settings import Settings
from retrain_cli.trainers import load_trainer, preload, trainer_for
from retrain_cli.trainers.base import Trainer, TrainingContext
from retrain_cli.training_data import Prepared, prepare

CLAIM_POLL_SECONDS = 0.5


@dataclass(frozen=True)
class RetrainRequest:
    job: str
    trigger: str = "manual"
    trigger_detail: str | None = None
    wait_seconds: float = 0.0
    promote: bool = True
    scheduled_for: datetime | None = None  # the cron fire time this run serves, if any


class LeaseLost(RetrainError):
    """The run's database lease expired (the process was frozen or cut off): stop, register
    nothing, and leave the slot to whoever holds it now."""


@dataclass
class RunResult:
    job: str
    run_id: int
    status: str
    trigger: str
    version: dict[str, Any] | None = None
    promoted: bool = False
    gate: dict[str, Any] | None = None
    duration_s: float = 0.0
    error: str | None = None
    # wall seconds of each step the run reached: load (read, validate and fingerprint the
    # data while the trainer's library imports), train, evaluate (the new model on the
    # hold-out), champion (the active model on the same hold-out), register (gate, artifact,
    # version, history)
    phases: dict[str, float] = field(default_factory=dict)


class Phases:
    """Wall seconds per named step, in the order they ran."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds: dict[str, float] = {}
        self._clock = clock

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = self._clock()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + self._clock() - start


@dataclass
class Hooks:
    """Seams for tests and the CLI: which trainer, which semaphore, how progress is shown."""

    trainer_factory: Callable[[str, dict[str, Any]], Trainer] = trainer_for
    semaphore: Semaphore | None = None
    on_progress: Callable[[int, int], None] = field(default=lambda done, total: None)
    heartbeat_seconds: float | None = None  # default: the settings' heartbeat_interval


class RunFailed(RetrainError):
    """The run failed and was recorded `failed`; `result` holds what was recorded."""

    def __init__(self, result: RunResult) -> None:
        super().__init__(result.error or "retrain failed")
        self.result = result


def retrain(
    engine: Engine, settings: Settings, request: RetrainRequest, hooks: Hooks | None = None
) -> RunResult:
    """Run one retrain of `request.job`; raise BusyError (exit 75) or RunFailed (exit 1)."""
    hooks = hooks or Hooks()
    with session_scope(engine) as session:
        history.sweep_abandoned(session, utcnow())
        job = effective_job(get_job(session, request.job), load_configs(session))
    semaphore = hooks.semaphore or FileSemaphore(
        settings.locks_dir, settings.max_concurrent_retrains
    )
    try:
        lease = semaphore.acquire(job.name, request.wait_seconds)
    except BusyError as exc:
        _record_skipped(engine, job, request, exc)
        raise
    try:
        run_id = _claim_within(engine, settings, request, job, request.wait_seconds)
    except BusyError as exc:
        lease.release()
        _record_skipped(engine, job, request, exc)
        raise
    try:
        return _run(engine, settings, request, hooks, job, run_id)
    finally:
        lease.release()


def _record_skipped(
    engine: Engine, job: EffectiveJob, request: RetrainRequest, exc: BusyError
) -> None:
    with session_scope(engine, check_schema=False) as session:
        history.record_skipped(
            session, job.id, request.trigger, request.trigger_detail, str(exc), utcnow()
        )


class _AllSlotsBusy(BusyError):
    """Every database slot is held (worth waiting for, unlike "this job is running")."""


def _claim_within(
    engine: Engine,
    settings: Settings,
    request: RetrainRequest,
    job: EffectiveJob,
    wait_seconds: float,
) -> int:
    """Claim a slot, retrying until `wait_seconds` pass while every slot is held elsewhere."""
    deadline = time.monotonic() + max(wait_seconds, 0.0)
    while True:
        try:
            return _claim(engine, settings, request, job)
        except _AllSlotsBusy:
            if time.monotonic() >= deadline:
                raise
            time.sleep(CLAIM_POLL_SECONDS)


def _claim(engine: Engine, settings: Settings, request: RetrainRequest, job: EffectiveJob) -> int:
    """Insert the running row: with database slots, into the first free slot (each try its own
    transaction; the unique index, not a count, decides races); raise BusyError otherwise."""
    slots: list[int | None] = (
        list(range(settings.max_concurrent_retrains)) if settings.database_slots else [None]
    )
    lease_s = settings.lease_ttl_s if settings.database_slots else None
    for slot in slots:
        try:
            with session_scope(engine, check_schema=False) as session:
                if slot == 0:
                    history.expire_leases(session)
                return history.start_run(
                    session,
                    job.id,
                    request.trigger,
                    request.trigger_detail,
                    utcnow(),
                    slot=slot,
                    lease_s=lease_s,
                    scheduled_for=request.scheduled_for,
                ).id
        except IntegrityError:
            _explain_conflict(engine, job, request)  # raises when the job itself is the reason
    raise _AllSlotsBusy(
        f"all {settings.max_concurrent_retrains} retrain slots are busy across hosts"
    )


def _explain_conflict(engine: Engine, job: EffectiveJob, request: RetrainRequest) -> None:
    from retrain_cli.db.models import RetrainingJobHistory as Run

    with session_scope(engine, check_schema=False) as session:
        holder = session.scalar(select(Run).where(Run.job_id == job.id, Run.status == "running"))
        if holder is not None:
            raise BusyError(
                f"job {job.name!r} is already running (run {holder.id}, pid "
                f"{holder.pid} on {holder.host})"
            )
        if request.scheduled_for is not None and session.scalar(
            select(Run.id).where(Run.job_id == job.id, Run.scheduled_for == request.scheduled_for)
        ):
            raise BusyError(
                f"job {job.name!r} already ran for the fire time "
                f"{request.scheduled_for.isoformat()}"
            )


def _run(
    engine: Engine,
    settings: Settings,
    request: RetrainRequest,
    hooks: Hooks,
    job: EffectiveJob,
    run_id: int,
) -> RunResult:
    started = time.monotonic()
    lease_s = settings.lease_ttl_s if settings.database_slots else None
    heartbeat = _Heartbeat(engine, run_id, hooks.heartbeat_seconds or settings.heartbeat_s, lease_s)
    staging: Path | None = None
    phases = Phases()
    try:
        heartbeat.start()
        trainer = hooks.trainer_factory(job.type, job.hyperparameters)
        with phases("load"):
            prepared = _prepare_while_importing(job, trainer.modules)
            with session_scope(engine) as session:
                champion = registry.active_version(session, job.model)
                champion_info = _describe(champion) if champion else None

        def report(done: int, total: int) -> None:
            heartbeat.check()  # fencing: stop at once if the run was taken away
            hooks.on_progress(done, total)

        deadline = started + (job.spec.timeout)
        context = TrainingContext(deadline=deadline, on_progress=report)
        with phases("train"):
            init_from = _init_from(settings, job, champion_info)
            trainer.fit(prepared.train, context, init_from)
        heartbeat.check()
        with phases("evaluate"):
            metrics = _holdout_metrics(job, prepared, trainer.predict(prepared.holdout.features))
        with phases("champion"):
            champion_metric, champion_note = _champion_metric(
                settings, job, prepared, champion_info
            )
        with phases("register"):
            decision = _gate(job, request, metrics, champion_metric, champion_note, prepared)
            staging = _stage(settings, job, trainer, prepared, metrics)
            result = _register(
                heartbeat,
                engine,
                settings,
                job,
                run_id,
                staging,
                metrics,
                prepared,
                champion_info if init_from else None,
                decision,
                champion_info,
                started,
            )
            staging = None
        result.trigger = request.trigger
        result.phases = phases.seconds
        return result
    except LeaseLost as exc:
        raise RunFailed(
            RunResult(
                job.name,
                run_id,
                "abandoned",
                request.trigger,
                duration_s=time.monotonic() - started,
                error=_one_line(exc),
                phases=phases.seconds,
            )
        ) from exc
    except Exception as exc:
        message = _one_line(exc)
        with session_scope(engine) as session:
            history.finish_run(session, run_id, "failed", utcnow(), error=message)
        raise RunFailed(
            RunResult(
                job.name,
                run_id,
                "failed",
                request.trigger,
                duration_s=time.monotonic() - started,
                error=message,
                phases=phases.seconds,
            )
        ) from exc
    finally:
        heartbeat.stop()
        if staging is not None:
            artifacts.discard(staging)


def _prepare_while_importing(job: EffectiveJob, modules: tuple[str, ...]) -> Prepared:
    """Load the training data while the trainer's library imports on a thread (about a second
    for LightGBM; the Parquet reader releases the GIL)."""
    importer = threading.Thread(target=preload, args=(modules,), daemon=True)
    importer.start()
    try:
        return prepare(job)
    finally:
        importer.join()


def _describe(version: ModelVersionManagement) -> dict[str, Any]:
    return {
        "version": version.version,
        "id": version.id,
        "sha256": version.sha256,
        "path": version.artifact_path,
        "type": version.model_type,
    }


def _init_from(
    settings: Settings, job: EffectiveJob, champion: dict[str, Any] | None
) -> Path | None:
    """The champion's directory, when the strategy is incremental and the champion is verified."""
    if job.strategy != "incremental" or champion is None or champion["type"] != job.type:
        return None
    directory = Path(champion["path"]).parent
    artifacts.verify(directory, champion["sha256"])
    return directory


def _holdout_metrics(job: EffectiveJob, prepared: Prepared, scores: Any) -> performance.Evaluation:
    """Metrics over the hold-out rows the model scored (a sequence model leaves the first
    `sequence_length - 1` rows unscored); `n_samples` says how many."""
    import numpy as np

    section = job.spec.performance
    threshold = section.decision_threshold
    scored = np.isfinite(scores)
    scores = scores[scored]
    returns = None
    if prepared.holdout_returns is not None:
        # The train data's return column is the asset's return; the model goes long at or above
        # the decision threshold and short below it.
        returns = np.where(scores >= threshold, 1.0, -1.0) * prepared.holdout_returns[scored]
    return performance.evaluate(
        prepared.holdout.target[scored],
        scores,
        returns,
        threshold=threshold,
        min_samples=job.spec.gate.min_samples,
        periods_per_year=section.periods_per_year,
        risk_free=section.risk_free,
    )


def _champion_metric(
    settings: Settings, job: EffectiveJob, prepared: Prepared, champion: dict[str, Any] | None
) -> tuple[float | None, str | None]:
    """The champion's primary metric on the same hold-out, or why it has none."""
    if champion is None:
        return None, None
    directory = Path(champion["path"]).parent
    try:
        manifest = artifacts.verify(directory, champion["sha256"])
        trainer = load_trainer(champion["type"], directory, manifest)
        scores = trainer.predict(prepared.holdout.features)
    except Exception as exc:
        return None, f"champion v{champion['version']} could not be evaluated: {_one_line(exc)}"
    evaluation = _holdout_metrics(job, prepared, scores)
    return evaluation.values.get(job.primary_metric), None


def _gate(
    job: EffectiveJob,
    request: RetrainRequest,
    metrics: performance.Evaluation,
    champion_metric: float | None,
    champion_note: str | None,
    prepared: Prepared,
) -> gate.GateDecision:
    settings = job.spec.gate
    decision = gate.decide(
        job.primary_metric,
        metrics.values.get(job.primary_metric),
        champion_metric,
        threshold=job.performance_threshold,
        min_improvement=settings.min_improvement,
        n_holdout=metrics.n_samples,
        min_samples=settings.min_samples,
    )
    notes = [champion_note] if champion_note else []
    if decision.promote and not request.promote:
        return gate.GateDecision(False, [*decision.reasons, "held: --no-promote"], decision.values)
    return gate.GateDecision(decision.promote, [*notes, *decision.reasons], decision.values)


def _stage(
    settings: Settings,
    job: EffectiveJob,
    trainer: Trainer,
    prepared: Prepared,
    metrics: performance.Evaluation,
) -> Path:
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
            "hyperparameters": job.hyperparameters,
            "strategy": job.strategy,
            "data_fingerprint": prepared.fingerprint,
            "holdout_metrics": metrics.values,
            "trained_at": utcnow().isoformat(),
        }
        from retrain_cli.serialize import jsonable

        artifacts.write_json(staging / "metadata.json", jsonable(metadata))
        # a few hold-out rows, for the preflight of a later promote or rollback
        prepared.holdout.features.head(registry.SAMPLE_ROWS).to_parquet(
            staging / registry.SAMPLE_FILE
        )
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


def _register(
    heartbeat: _Heartbeat,
    engine: Engine,
    settings: Settings,
    job: EffectiveJob,
    run_id: int,
    staging: Path,
    metrics: performance.Evaluation,
    prepared: Prepared,
    parent: dict[str, Any] | None,
    decision: gate.GateDecision,
    champion: dict[str, Any] | None,
    started: float,
) -> RunResult:
    """Number, publish and record the version, promote it if the gate says so, and close the
    run, all in one transaction; the published directory is removed again if it fails."""
    from retrain_cli.serialize import jsonable

    manifest = staging / artifacts.MANIFEST
    digest, size = artifacts.sha256_file(manifest), manifest.stat().st_size
    target: Path | None = None
    try:
        with session_scope(engine, check_schema=False) as session:
            heartbeat.fence(session)  # a run whose lease expired registers nothing
            registry.lock_active(session, job.model)  # numbering and switching, serialised
            latest = session.scalar(
                select(func.max(ModelVersionManagement.version)).where(
                    ModelVersionManagement.model_name == job.model
                )
            )
            number = (latest or 0) + 1
            target = artifacts.version_dir(settings.artifacts_dir, job.model, number)
            now = utcnow()
            version = ModelVersionManagement(
                model_name=job.model,
                version=number,
                model_type=job.type,
                job_id=job.id,
                status="registered",
                artifact_path=str(target / artifacts.MANIFEST),
                sha256=digest,
                size_bytes=size,
                strategy=job.strategy,
                parent_version=parent["version"] if parent else None,
                metrics=jsonable(
                    {
                        **metrics.values,
                        "n_holdout": len(prepared.holdout.target),
                        "n_scored": metrics.n_samples,
                        "undefined": metrics.reasons,
                    }
                ),
                hyperparameters=jsonable(job.hyperparameters),
                data_fingerprint=jsonable(prepared.fingerprint),
                created_at=now,
            )
            session.add(version)
            session.flush()
            artifacts.publish(staging, target)
            decision = _promote(session, job, run_id, version, decision, champion, now)
            gate_doc = {
                "decision": decision.decision,
                "reasons": decision.reasons,
                "values": jsonable(decision.values),
            }
            history.finish_run(
                session,
                run_id,
                "succeeded",
                now,
                version_id=version.id,
                promoted=decision.promote,
                gate=gate_doc,
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
    return RunResult(
        job=job.name,
        run_id=run_id,
        status="succeeded",
        trigger="",
        promoted=decision.promote,
        version={
            "model": job.model,
            "version": number,
            "sha256": digest,
            "artifact": str(target),
            "metrics": version.metrics,
        },
        gate=gate_doc,
        duration_s=time.monotonic() - started,
    )


def _promote(
    session: Any,
    job: EffectiveJob,
    run_id: int,
    version: ModelVersionManagement,
    decision: gate.GateDecision,
    champion: dict[str, Any] | None,
    now: Any,
) -> gate.GateDecision:
    """Switch to the new version when the gate says so, unless the champion it was compared
    with is no longer active (then it stays registered, and the decision says why)."""
    if not decision.promote:
        return decision
    try:
        registry.switch_active(
            session,
            version,
            now,
            expect_current=champion["version"] if champion else None,
            reason="; ".join(decision.reasons),
            job_id=job.id,
            run_id=run_id,
            preflight=False,
        )
    except ConflictError as exc:
        return gate.GateDecision(False, [*decision.reasons, f"held: {exc}"], decision.values)
    return decision


class _Heartbeat:
    """Renews the run's heartbeat (and lease) from a thread; `check` raises once the run was
    taken away or, with a lease, once no renewal succeeded for a whole lease (a frozen or
    cut-off process learns it at its next step, before any renewal)."""

    def __init__(self, engine: Engine, run_id: int, interval: float, lease_s: float | None) -> None:
        self.engine, self.run_id, self.interval, self.lease_s = engine, run_id, interval, lease_s
        self._stop = threading.Event()
        self._lost = False
        self._renewed = time.monotonic()
        self._thread = threading.Thread(target=self._loop, name="heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def check(self) -> None:
        if self._lost:
            raise LeaseLost("the run was marked abandoned by another process: stopping")
        if self.lease_s is not None and time.monotonic() - self._renewed > self.lease_s:
            self._lost = True
            raise LeaseLost("the run's lease expired before it could be renewed: stopping")

    def fence(self, session: Any) -> None:
        """Renew inside the registering transaction: only a live lease may register."""
        self.check()
        if not history.beat(session, self.run_id, utcnow(), self.lease_s):
            self._lost = True
            raise LeaseLost("the run's lease was lost before registering: nothing registered")

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                with session_scope(self.engine, check_schema=False) as session:
                    if not history.beat(session, self.run_id, utcnow(), self.lease_s):
                        self._lost = True
                        return
                self._renewed = time.monotonic()
            except RetrainError:
                continue  # a missed beat is retried; the lease bounds how long that can last


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
