"""A rollout's moves, on every `jobs due` tick, `perf check` and `versions rollout`: the next
step, the promotion at the end, an abort, and a bake's rollback (docs/rollouts.md). Each is made
in the caller's transaction under the model's lock and decided again from what is committed."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from retrain_cli.core.choices import RowKind, VersionStatus
from retrain_cli.core.errors import ConflictError, DataError, one_line
from retrain_cli.db.models import AutoRetrainingJob, ModelPerformanceTracking
from retrain_cli.db.tracking import of_kind
from retrain_cli.jobs.spec import JobSpec
from retrain_cli.jobs.store import JobFailure
from retrain_cli.versions import registry
from retrain_cli.versions.rollouts.state import (
    ACTOR,
    Move,
    Rollout,
    current,
    in_bake,
    models_to_advance,
    record,
)

if TYPE_CHECKING:
    from retrain_cli.jobs.sections import RolloutSpec
    from retrain_cli.jobs.store import JobFailure


def advance(session: Session, model: str, now: datetime, actor: str = ACTOR) -> list[Move]:
    """Move the model's rollout or bake as its recorded analyses allow (see `advance_or_wait`)."""
    return advance_or_wait(session, model, now, actor)[0]


def advance_or_wait(
    session: Session, model: str, now: datetime, actor: str = ACTOR
) -> tuple[list[Move], str | None]:
    """Move the model's rollout or bake as its recorded analyses allow: the next step once the
    step's bake has passed and its newest analysis passed; promotion after the last step; an
    abort (or, in a bake, a rollback) at `failure_limit` failed analyses. When nothing moves,
    why, in words (and until when)."""
    registry.lock_active(session, model)
    rollout = current(session, model)
    if rollout is not None:
        job, policy = _policy(session, rollout.job_id)
        if policy is None or policy.mode is None:
            why = "its job has no rollout policy any more"
            return [abort(session, model, now, actor, why)], None
        failed = _analyses(session, model, rollout.candidate, rollout.since, failed=True)
        if len(failed) >= policy.failure_limit:
            last = failed[-1].details or {}
            why = f"{len(failed)} failed analyses: {last.get('reason')}"
            return [abort(session, model, now, actor, why, last)], None
        step = min(rollout.step, len(policy.steps) - 1)  # the policy may have lost steps since
        latest = _analyses(session, model, rollout.candidate, rollout.step_since)
        if not latest:
            return [], f"no analysis of v{rollout.candidate} since step {step + 1} began"
        if latest[-1].degraded is not False:
            return [], f"v{rollout.candidate}'s newest analysis did not pass"
        ends = rollout.step_since + timedelta(seconds=policy.steps[step].bake)
        if now < ends:
            return [], f"step {step + 1}'s bake ends at {ends:%Y-%m-%d %H:%M:%SZ}"
        passed = latest[-1].details or {}
        if step + 1 < len(policy.steps):
            return [_step(session, rollout, policy, now, actor, passed, job)], None
        return [_promote(session, rollout, now, actor, passed, job)], None
    idle = "no rollout or bake in progress"
    active = registry.active_version(session, model)
    if active is None:
        return [], idle
    job, policy = _policy(session, active.job_id)
    if policy is None or in_bake(session, policy, active, now) is None:
        return [], idle
    assert active.promoted_at is not None and policy.bake_after_promote is not None
    failed = _analyses(session, model, active.version, active.promoted_at, failed=True)
    if len(failed) < policy.failure_limit:
        ends = active.promoted_at + timedelta(seconds=policy.bake_after_promote)
        return [], f"v{active.version}'s bake ends at {ends:%Y-%m-%d %H:%M:%SZ}"
    last = failed[-1].details or {}
    reason = f"failed its bake ({len(failed)} failed analyses): {last.get('reason')}"
    switch = registry.rollback(
        session, model, not_before=now, actor=actor, reason=reason, details=last
    )
    return [_from_switch(switch, reason, job, last)], None


def advance_all(session: Session, now: datetime) -> tuple[list[Move], list[JobFailure]]:
    """`advance` every model with a candidate or a champion in its bake, each in a savepoint:
    one model's failure is reported and the others still move. (A `jobs due` tick.)"""

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
    candidate.status, candidate.retired_at = VersionStatus.RETIRED, now
    champion = registry.active_version(session, model)
    frm = champion.version if champion else None
    job = _job_name(session, rollout.job_id)
    move = Move(
        model, "abort", frm, rollout.candidate, rollout.weight, 0.0, actor, reason, now, job
    )
    return record(session, replace(move, details=dict(details or {})), job_id=rollout.job_id)


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
    switch = registry.rollback(session, model, not_before=now, actor=actor, reason=reason)
    return _from_switch(switch, reason, job, {})


def promote_now(session: Session, model: str, now: datetime, actor: str, reason: str) -> Move:
    """End the rollout by promoting the candidate at once (an operator's decision)."""
    registry.lock_active(session, model)
    rollout = current(session, model)
    if rollout is None:
        raise ConflictError(f"{model} has no rollout in progress")
    return _promote(session, rollout, now, actor, {}, _job_name(session, rollout.job_id), reason)


def _policy(session: Session, job_id: int | None) -> tuple[str | None, RolloutSpec | None]:

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
            of_kind(RowKind.ROLLOUT),
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
    return record(session, move, job_id=rollout.job_id)


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
        not_before=now,
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
