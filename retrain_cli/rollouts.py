"""Safe rollouts: a candidate served beside the champion step by step and judged on live
outcomes (the judging: `rollout_checks`), and a bake after each promotion that rolls a failing
champion back.

Stateless and cron-driven: the state is the version rows (`candidate`, `active`), the events of
`model_version_events` (each step with its weights and analysis) and the analyses recorded by
`perf check` (`model_performance_tracking` rows named `rollout:<metric>`). Each move is made in the
caller's transaction under the model's lock, as promotions are, and decided again from what is
committed: two hosts advancing one rollout at once make one step (docs/rollouts.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from retrain_cli import registry, serving
from retrain_cli.db.models import (
    AutoRetrainingJob,
    ModelPerformanceTracking,
    ModelVersionEvent,
    ModelVersionManagement,
)
from retrain_cli.errors import ConflictError, DataError
from retrain_cli.notify import Event

if TYPE_CHECKING:
    from retrain_cli.jobs import JobFailure
    from retrain_cli.jobspec import RolloutSpec

ACTOR = "rollout"  # who moves a rollout on a `jobs due` tick or a `perf check`
PREFIX = "rollout:"  # the metric of an analysis row: `rollout:auc`
STEP_EVENTS = ("candidate", "step")


@dataclass(frozen=True)
class Rollout:
    """A candidate in rollout: its current step (0-based) and weight, since when."""

    model: str
    candidate: int
    mode: str
    step: int
    steps: int
    weight: float
    since: datetime  # became the candidate
    step_since: datetime
    job_id: int | None


@dataclass(frozen=True)
class Move:
    """One committed change of a rollout or a bake, for the output and the notifications."""

    model: str
    event: str  # candidate | step | promote | abort | rollback
    from_version: int | None
    to_version: int
    from_weight: float | None
    to_weight: float | None
    actor: str
    reason: str
    at: datetime
    job: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        weights = ""
        if self.from_weight is not None and self.to_weight is not None:
            weights = f" ({self.from_weight:.0%} -> {self.to_weight:.0%})"
        return (
            f"{self.model}: {self.event} v{self.from_version} -> v{self.to_version}{weights} "
            f"by {self.actor}: {self.reason}"
        )

    def events(self) -> list[Event]:
        kind = {
            "promote": "version_promoted",
            "rollback": "rollback",
            "abort": "rollout_aborted",
        }.get(self.event, "rollout_step")
        details = {
            "from": self.from_version,
            "to": self.to_version,
            "from_weight": self.from_weight,
            "to_weight": self.to_weight,
            "reason": self.reason,
            **self.details,
        }
        return [Event(kind, self.describe(), self.at, self.job, self.model, details)]


def current(session: Session, model: str) -> Rollout | None:
    """The model's rollout in progress, from its candidate row and the candidate's events."""
    candidate = session.scalar(
        select(ModelVersionManagement).where(
            ModelVersionManagement.model_name == model,
            ModelVersionManagement.status == "candidate",
        )
    )
    if candidate is None:
        return None
    event = ModelVersionEvent
    steps = list(
        session.scalars(
            select(event)
            .where(
                event.model_name == model,
                event.to_version == candidate.version,
                event.event.in_(STEP_EVENTS),
            )
            .order_by(event.at, event.id)
        )
    )
    if not steps:  # a candidate row no rollout started (edited by hand): it serves nothing
        return Rollout(
            model,
            candidate.version,
            "shadow",
            0,
            1,
            0.0,
            candidate.created_at,
            candidate.created_at,
            candidate.job_id,
        )
    first, last = steps[0], steps[-1]
    details = first.details or {}
    return Rollout(
        model=model,
        candidate=candidate.version,
        mode=str(details.get("mode", "canary")),
        step=len(steps) - 1,
        steps=int(details.get("steps", len(steps))),
        weight=float(last.to_weight or 0.0),
        since=first.at,
        step_since=last.at,
        job_id=candidate.job_id,
    )


def candidate_at(session: Session, model: str, at: datetime) -> tuple[int, float] | None:
    """The candidate in rollout at `at` and its weight then, from the events."""
    event = ModelVersionEvent
    last = session.scalar(
        select(event)
        .where(event.model_name == model, event.at <= at, event.event.in_((*STEP_EVENTS, "abort")))
        .order_by(event.at.desc(), event.id.desc())
        .limit(1)
    )
    if last is None or last.event == "abort":
        return None
    promoted = session.scalar(
        select(event.id).where(
            event.model_name == model,
            event.event == "promote",
            event.to_version == last.to_version,
            event.at >= last.at,
            event.at <= at,
        )
    )
    return None if promoted is not None else (last.to_version, float(last.to_weight or 0.0))


def start(
    session: Session,
    policy: RolloutSpec,
    version: ModelVersionManagement,
    champion: int | None,
    now: datetime,
    *,
    reason: str,
    job_id: int | None,
    run_id: int | None,
) -> Move:
    """Make a gate-passing `version` the candidate at the first step's weight (call under the
    model's lock). A rollout already in progress keeps going: the new version stays registered."""
    model = version.model_name
    running = current(session, model)
    if running is not None:
        raise ConflictError(
            f"v{running.candidate} is in rollout: v{version.version} stays registered "
            f"(`versions rollout {model} --abort` ends that rollout)"
        )
    assert policy.mode is not None
    weight = policy.steps[0].weight
    version.status = "candidate"
    details = {"mode": policy.mode, "step": 1, "steps": len(policy.steps)}
    move = Move(model, "candidate", champion, version.version, 0.0, weight, ACTOR, reason, now)
    return _record(session, replace(move, details=details), job_id=job_id, run_id=run_id)


def in_bake(
    session: Session,
    policy: RolloutSpec,
    active: ModelVersionManagement | None,
    now: datetime,
) -> tuple[int, int] | None:
    """(champion, previous champion) while the champion's bake runs."""
    if active is None or policy.bake_after_promote is None or active.promoted_at is None:
        return None
    if now >= active.promoted_at + timedelta(seconds=policy.bake_after_promote):
        return None
    previous = registry.previous_champion(session, active.model_name, active.version)
    return None if previous is None else (active.version, previous)


# --- advancing, on every `jobs due` tick, `perf check` and `versions rollout` -----------------


def advance(session: Session, model: str, now: datetime, actor: str = ACTOR) -> list[Move]:
    """Move the model's rollout or bake as its recorded analyses allow: the next step once the
    step's bake has passed and its newest analysis passed; promotion after the last step; an
    abort (or, in a bake, a rollback) at `failure_limit` failed analyses."""
    registry.lock_active(session, model)
    rollout = current(session, model)
    if rollout is not None:
        job, policy = _policy(session, rollout.job_id)
        if policy is None or policy.mode is None:
            return [abort(session, model, now, actor, "its job has no rollout policy any more")]
        failed = _analyses(session, model, rollout.candidate, rollout.since, failed=True)
        if len(failed) >= policy.failure_limit:
            last = failed[-1].details or {}
            why = f"{len(failed)} failed analyses: {last.get('reason')}"
            return [abort(session, model, now, actor, why, last)]
        latest = _analyses(session, model, rollout.candidate, rollout.step_since)
        if not latest or latest[-1].degraded is not False:
            return []
        step = min(rollout.step, len(policy.steps) - 1)  # the policy may have lost steps since
        if now < rollout.step_since + timedelta(seconds=policy.steps[step].bake):
            return []
        passed = latest[-1].details or {}
        if step + 1 < len(policy.steps):
            return [_step(session, rollout, policy, now, actor, passed, job)]
        return [_promote(session, rollout, now, actor, passed, job)]
    active = registry.active_version(session, model)
    if active is None:
        return []
    job, policy = _policy(session, active.job_id)
    if policy is None or in_bake(session, policy, active, now) is None:
        return []
    assert active.promoted_at is not None
    failed = _analyses(session, model, active.version, active.promoted_at, failed=True)
    if len(failed) < policy.failure_limit:
        return []
    last = failed[-1].details or {}
    reason = f"failed its bake ({len(failed)} failed analyses): {last.get('reason')}"
    switch = registry.rollback(session, model, now, actor=actor, reason=reason, details=last)
    return [_from_switch(switch, reason, job, last)]


def advance_all(session: Session, now: datetime) -> tuple[list[Move], list[JobFailure]]:
    """`advance` every model with a candidate or a champion in its bake, each in a savepoint:
    one model's failure is reported and the others still move. (A `jobs due` tick.)"""
    from retrain_cli.errors import one_line
    from retrain_cli.jobs import JobFailure

    moves: list[Move] = []
    failures: list[JobFailure] = []
    for model in models_to_advance(session, now):
        try:
            with session.begin_nested():
                moves += advance(session, model, now)
        except Exception as exc:
            failures.append(JobFailure(model, f"rollout: {one_line(exc)}"))
    return moves, failures


def abort(
    session: Session,
    model: str,
    now: datetime,
    actor: str,
    reason: str,
    details: dict[str, Any] | None = None,
) -> Move:
    """Retire the candidate: the champion keeps all traffic."""
    registry.lock_active(session, model)
    rollout = current(session, model)
    if rollout is None:
        raise ConflictError(f"{model} has no rollout in progress")
    candidate = registry.get_version(session, model, rollout.candidate)
    candidate.status, candidate.retired_at = "retired", now
    champion = registry.active_version(session, model)
    frm = champion.version if champion else None
    job = _job_name(session, rollout.job_id)
    move = Move(
        model, "abort", frm, rollout.candidate, rollout.weight, 0.0, actor, reason, now, job
    )
    return _record(session, replace(move, details=dict(details or {})), job_id=rollout.job_id)


def abort_or_roll_back(
    session: Session, model: str, now: datetime, actor: str, reason: str
) -> Move:
    """An operator's `--abort`: retire the candidate, or end a champion's bake by rolling back."""
    registry.lock_active(session, model)
    if current(session, model) is not None:
        return abort(session, model, now, actor, reason)
    active = registry.active_version(session, model)
    job, policy = _policy(session, active.job_id) if active else (None, None)
    if policy is None or in_bake(session, policy, active, now) is None:
        raise ConflictError(f"{model} has no rollout or bake in progress")
    switch = registry.rollback(session, model, now, actor=actor, reason=reason)
    return _from_switch(switch, reason, job, {})


def promote_now(session: Session, model: str, now: datetime, actor: str, reason: str) -> Move:
    """End the rollout by promoting the candidate at once (an operator's decision)."""
    registry.lock_active(session, model)
    rollout = current(session, model)
    if rollout is None:
        raise ConflictError(f"{model} has no rollout in progress")
    return _promote(session, rollout, now, actor, {}, _job_name(session, rollout.job_id), reason)


def models_to_advance(session: Session, now: datetime) -> list[str]:
    """The models with a candidate, or whose champion may still be in its bake."""
    version, job = ModelVersionManagement, AutoRetrainingJob
    candidates = session.scalars(select(version.model_name).where(version.status == "candidate"))
    bakes = session.execute(
        select(
            version.model_name,
            version.promoted_at,
            job.spec[("rollout", "bake_after_promote")].as_integer(),
        )
        .join(job, version.job_id == job.id)
        .where(version.status == "active")
    )
    baking = [
        model
        for model, promoted_at, bake in bakes
        if bake and promoted_at is not None and now < promoted_at + timedelta(seconds=bake)
    ]
    return sorted({*candidates, *baking})


def _policy(session: Session, job_id: int | None) -> tuple[str | None, RolloutSpec | None]:
    from retrain_cli.jobspec import JobSpec

    row = session.get(AutoRetrainingJob, job_id) if job_id is not None else None
    if row is None:
        return None, None
    return row.name, JobSpec.from_stored(row.spec).rollout


def _job_name(session: Session, job_id: int | None) -> str | None:
    return session.scalar(select(AutoRetrainingJob.name).where(AutoRetrainingJob.id == job_id))


def _analyses(
    session: Session, model: str, version: int, since: datetime, *, failed: bool = False
) -> list[ModelPerformanceTracking]:
    row = ModelPerformanceTracking
    query = (
        select(row)
        .where(
            row.model_name == model,
            row.version == version,
            row.metric.startswith(PREFIX),
            row.checked_at >= since,
        )
        .order_by(row.checked_at, row.id)
    )
    if failed:
        query = query.where(row.degraded.is_(True))
    return list(session.scalars(query))


def _step(
    session: Session,
    rollout: Rollout,
    policy: RolloutSpec,
    now: datetime,
    actor: str,
    passed: dict[str, Any],
    job: str | None,
) -> Move:
    weight = policy.steps[rollout.step + 1].weight
    champion = registry.active_version(session, rollout.model)
    frm = champion.version if champion else None
    reason = f"step {rollout.step + 2} of {len(policy.steps)}: {passed.get('reason')}"
    details = {**passed, "step": rollout.step + 2, "steps": len(policy.steps)}
    move = Move(
        rollout.model,
        "step",
        frm,
        rollout.candidate,
        rollout.weight,
        weight,
        actor,
        reason,
        now,
        job,
        details,
    )
    return _record(session, move, job_id=rollout.job_id)


def _promote(
    session: Session,
    rollout: Rollout,
    now: datetime,
    actor: str,
    passed: dict[str, Any],
    job: str | None,
    reason: str | None = None,
) -> Move:
    target = registry.get_version(session, rollout.model, rollout.candidate)
    why = reason or f"rollout passed every step: {passed.get('reason')}"
    try:  # days may have passed since it was trained: its files are checked again
        registry.check_artifact(target)
    except DataError as exc:
        return abort(session, rollout.model, now, actor, str(exc), passed)
    switch = registry.switch_active(
        session,
        target,
        now,
        actor=actor,
        reason=why,
        job_id=rollout.job_id,
        preflight=False,
        from_weight=rollout.weight,
        details=passed or None,
    )
    return _from_switch(switch, why, job, passed, rollout.weight)


def _from_switch(
    switch: registry.Switch,
    reason: str,
    job: str | None,
    details: dict[str, Any],
    from_weight: float | None = None,
) -> Move:
    return Move(
        switch.model,
        switch.event,
        switch.from_version,
        switch.to_version,
        from_weight,
        1.0,
        switch.actor,
        reason,
        switch.at,
        job,
        dict(details),
    )


def _record(
    session: Session, move: Move, *, job_id: int | None = None, run_id: int | None = None
) -> Move:
    """Append the move's `model_version_events` row."""
    from retrain_cli.serialize import jsonable

    session.add(
        ModelVersionEvent(
            model_name=move.model,
            event=move.event,
            from_version=move.from_version,
            to_version=move.to_version,
            from_weight=move.from_weight,
            to_weight=move.to_weight,
            actor=move.actor,
            reason=move.reason,
            job_id=job_id,
            run_id=run_id,
            at=move.at,
            details=jsonable(move.details) or None,
        )
    )
    session.flush()
    serving.changed(session, move.model)
    return move
