"""One retrain: slot -> running row -> load -> train -> evaluate -> stage -> register + gate.

Each step that must be visible to other processes commits on its own (the skipped or running
row, heartbeats); registering the version, promoting it and closing the run happen in one
transaction, so a failure or a kill never leaves a version without its artifact, an artifact
without its version, or a half-promoted model.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from retrain_cli.compute.interface import Backend, Placement
from retrain_cli.compute.local import LocalPlacement
from retrain_cli.core.choices import RunStatus
from retrain_cli.core.durations import Phases, utcnow
from retrain_cli.core.errors import BusyError, DataError, RetrainError, one_line
from retrain_cli.core.notify import Event
from retrain_cli.core.settings import Settings
from retrain_cli.core.threads import limited, thread_share
from retrain_cli.data import contracts
from retrain_cli.db.session import session_scope
from retrain_cli.jobs.store import EffectiveJob, effective_job, get_job, load_configs
from retrain_cli.store import artifacts
from retrain_cli.trainers.base import Trainer, TrainingContext
from retrain_cli.trainers.families import trainer_for
from retrain_cli.training import evaluation, history, runlog, slots
from retrain_cli.training.evaluation import Champion
from retrain_cli.training.gate import GateDecision
from retrain_cli.training.importance import feature_importance
from retrain_cli.training.registration import Evaluated, register, stage
from retrain_cli.training.runlog import RunLog
from retrain_cli.training.slots import Cancelled, Claim, Heartbeat, HostSlots, LeaseLost
from retrain_cli.versions import registry
from retrain_cli.versions.registry import VersionRef


@dataclass(frozen=True)
class RetrainRequest:
    job: str
    trigger: str = "manual"
    trigger_detail: str | None = None
    wait_seconds: float = 0.0
    promote: bool = True
    scheduled_for: datetime | None = None  # the cron fire time this run serves, if any
    force: bool = False  # train even when nothing changed since the active version


@dataclass
class RunResult:
    job: str
    run_id: int
    status: RunStatus
    trigger: str
    version: VersionRef | None = None
    promoted: bool = False
    gate: GateDecision | None = None
    duration_s: float = 0.0
    error: str | None = None
    threads: int = 0  # the run's share of the host's cores (0: every core)
    compute: str = "local"  # where the model trained: "local" or "dask"
    compute_note: str | None = None  # why a `compute: dask` job trained here
    # wall seconds of each step the run reached: load (read, validate and fingerprint the
    # data), train (the trainer's library loads with it), evaluate (the new model on the
    # hold-out), champion (the active model on the same hold-out), register (gate, artifact,
    # version, history)
    phases: dict[str, float] = field(default_factory=dict)

    def events(self, at: datetime) -> list[Event]:
        """What operators are told: a failure, a promotion, or a rollout's new candidate."""
        if self.status is RunStatus.FAILED:
            summary = f"retrain of {self.job} failed: {self.error}"
            return [Event("retrain_failed", summary, at, self.job, None, {"run_id": self.run_id})]
        if not (self.version and self.gate and self.gate.changes_serving):
            return []
        reasons = "; ".join(self.gate.reasons)
        kind, verb = (
            ("version_promoted", "promoted") if self.promoted else ("rollout_step", "in rollout")
        )
        model, version = self.version.model, self.version.version
        summary = f"{self.job}: {model} v{version} {verb} ({reasons})"
        details = {"run_id": self.run_id, "version": self.version}
        return [Event(kind, summary, at, self.job, model, details)]


@dataclass
class Hooks:
    """Seams for tests and the CLI: which trainer, which host slots, how progress is shown."""

    trainer_factory: Callable[[str, dict[str, Any]], Trainer] = trainer_for
    host_slots: HostSlots | None = None
    on_progress: Callable[[int, int], None] = field(default=lambda done, total: None)
    heartbeat_seconds: float | None = None  # default: the settings' heartbeat_interval
    placement: Placement = field(default_factory=LocalPlacement)  # the CLI passes the cluster's


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
    claim = Claim(job.id, job.name, request.trigger, request.trigger_detail, request.scheduled_for)
    host = hooks.host_slots or slots.file_slots(settings)
    try:
        lease = slots.acquire(engine, settings, claim, request.wait_seconds, host)
    except BusyError as exc:
        with session_scope(engine, check_schema=False) as session:
            history.record_skipped(
                session, job.id, request.trigger, request.trigger_detail, str(exc), utcnow()
            )
        raise
    log = RunLog(runlog.path_of(settings.logs_dir, job.name, lease.run_id))
    detail = f" ({request.trigger_detail})" if request.trigger_detail else ""
    log.line(
        f"run {lease.run_id} of {job.name} ({job.model}): trigger {request.trigger}{detail}, "
        f"host {history.HOST}, pid {os.getpid()}"
    )
    try:
        threads = thread_share(job.hyperparameters, settings.max_concurrent_retrains)
        with limited(threads), log.warnings():  # this thread trains: its OpenMP and BLAS pools
            result = _run(engine, settings, request, hooks, job, lease.run_id, threads, log)
        log.line(_outcome(result))
        return result
    except RunFailed as failed:
        log.line(_outcome(failed.result))
        raise
    finally:
        lease.release()


def check_contract(job: EffectiveJob, backend: Backend[Any], log: RunLog) -> None:
    """The training data against the job's `schema:` (on the cluster for `compute: dask`);
    each broken rule on a line of the run's log, and the run fails naming them."""
    assert job.spec.contract is not None
    source, time_column = job.spec.data.train, job.spec.time_column
    broken = backend.check_contract(source, "training", job.spec.contract, time_column, utcnow())
    for violation in broken:
        log.line(f"data contract: {violation.message}")
    if broken:
        raise DataError(contracts.summary("training data breaks the job's data contract", broken))


def _outcome(result: RunResult) -> str:
    steps = ", ".join(f"{name} {seconds:.1f}s" for name, seconds in result.phases.items())
    timed = f" in {result.duration_s:.1f}s ({steps})" if steps else ""
    if result.status is not RunStatus.SUCCEEDED:
        return f"{result.status}{timed}: {result.error}"
    assert result.version is not None and result.gate is not None
    reasons = "; ".join(result.gate.reasons)
    return (
        f"succeeded{timed}: registered {result.version.model} v{result.version.version}, "
        f"{result.gate.decision} ({reasons})"
    )


def _run(
    engine: Engine,
    settings: Settings,
    request: RetrainRequest,
    hooks: Hooks,
    job: EffectiveJob,
    run_id: int,
    threads: int,
    log: RunLog,
) -> RunResult:
    started = time.monotonic()
    interval = hooks.heartbeat_seconds or settings.heartbeat_s
    heartbeat = Heartbeat(engine, settings, run_id, interval)
    staging: Path | None = None
    phases = Phases()

    def report(done: int, total: int) -> None:
        heartbeat.check()  # fencing: stop at once if the run was taken away
        hooks.on_progress(done, total)

    try:
        heartbeat.start()
        trainer = hooks.trainer_factory(job.type, {"num_threads": threads, **job.hyperparameters})
        backend, compute_note = hooks.placement.for_training(job, trainer)
        log.line(f"training {job.type} {backend.where} on {threads or 'every'} thread(s)")
        with phases("load"):
            if job.spec.contract is not None:  # before anything is trained on broken data
                check_contract(job, backend, log)
            prepared = backend.prepare_training(job)
            with session_scope(engine) as session:
                active = registry.active_version(session, job.model)
                champion = Champion.of(active) if active else None
                unchanged = (
                    None if request.force else evaluation.nothing_to_learn(job, prepared, active)
                )
            if unchanged is None and champion is not None:  # here, not after training
                champion = champion.on_this_host(job.model, settings.artifacts_dir)
        if unchanged is not None:
            with session_scope(engine) as session:
                history.finish_run(
                    session,
                    run_id,
                    RunStatus.SKIPPED,
                    utcnow(),
                    error=unchanged,
                    phases=phases.seconds,
                )
            return RunResult(
                job.name,
                run_id,
                RunStatus.SKIPPED,
                request.trigger,
                duration_s=time.monotonic() - started,
                error=unchanged,
                threads=threads,
                phases=phases.seconds,
            )
        with phases("train"):
            parent = champion if evaluation.continues_from(job, champion) else None
            init_from = parent.verified()[0] if parent else None
            context = TrainingContext(deadline=started + job.spec.timeout, on_progress=report)
            backend.fit(trainer, prepared, context, init_from)
        heartbeat.check()
        with phases("evaluate"):
            scores = trainer.predict(prepared.holdout.features)
            metrics = evaluation.holdout_metrics(job, prepared, scores)
            weights = feature_importance(job, trainer, prepared)
        with phases("champion"):
            compared = evaluation.champion_metric(job, prepared, champion)
        with phases("register"):
            decision = evaluation.decide(job, metrics, compared, may_promote=request.promote)
            staging = stage(settings, job, trainer, prepared, metrics, backend)
            evaluated = Evaluated(prepared, metrics, champion, parent, decision, weights)
            registered = register(engine, settings, heartbeat, job, staging, evaluated)
            staging = None
        with session_scope(engine) as session:
            history.record_phases(session, run_id, phases.seconds)
        return RunResult(
            job.name,
            run_id,
            RunStatus.SUCCEEDED,
            request.trigger,
            version=registered.version,
            promoted=registered.promoted,
            gate=registered.gate,
            duration_s=time.monotonic() - started,
            threads=threads,
            compute=backend.where,
            compute_note=compute_note,
            phases=phases.seconds,
        )
    except Exception as exc:
        # a lost lease means another process may own the run now: leave its row alone
        ends: dict[type[Exception], RunStatus] = {
            LeaseLost: RunStatus.ABANDONED,
            Cancelled: RunStatus.CANCELLED,
        }
        status = ends.get(type(exc), RunStatus.FAILED)
        message = one_line(exc)
        if status != RunStatus.ABANDONED:
            with session_scope(engine) as session:
                history.finish_run(
                    session, run_id, status, utcnow(), error=message, phases=phases.seconds
                )
        failed = RunResult(
            job.name,
            run_id,
            status,
            request.trigger,
            duration_s=time.monotonic() - started,
            error=message,
            phases=phases.seconds,
        )
        raise RunFailed(failed) from exc
    finally:
        heartbeat.stop()
        if staging is not None:
            artifacts.discard(staging)
