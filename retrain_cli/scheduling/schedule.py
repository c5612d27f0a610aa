"""When is a job due? Pure functions of a job's state and `now` (no database, no clock).

Triggers, each only when enabled for the job:
- scheduled: the latest cron fire time at or before `now` (in the job's time zone) is later than
  the last run's start (or the job's creation). Missed fire times coalesce into one run.
- drift: the newest dataset-level drift result after the last run says drifted.
- performance: the newest primary performance result after the last run says degraded.
- age: the active version is older than `max_model_age`.
- manual: `jobs trigger` was asked after the last run.
A running job is never due; a job whose last run failed (or was abandoned) waits `retry_backoff`.

A due job has been due since its earliest reason arose (the first fire time after its last run,
the drift or degradation found, the manual request, the moment its model grew too old): due jobs
go by priority, except that a job due for `max_wait` or longer goes ahead of every job that has
waited less, the longest waiting first. So a stream of higher-priority jobs cannot starve it.

Cron expressions are evaluated on the local wall clock, then mapped to instants: a fire time that
a spring-forward gap skips happens with the offset from before the gap (an hour later in London),
and one that a fall-back repeats happens at its first occurrence only, so a daily job runs exactly
once either way.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from retrain_cli.core.choices import RunStatus
from retrain_cli.jobs.defaults import RETRY_BACKOFF_S

FAILED = (RunStatus.FAILED, RunStatus.ABANDONED)


@dataclass(frozen=True)
class Reason:
    trigger: str
    detail: str
    fire_time: datetime | None = None  # for `scheduled`: the fire time the run serves
    since: datetime | None = None  # when this reason arose


@dataclass(frozen=True)
class JobState:
    """What the decision needs about one job, read from the six tables."""

    job: str
    model: str
    priority: int
    schedule: str
    timezone: str
    triggers: frozenset[str]
    created_at: datetime
    retry_backoff_s: int = RETRY_BACKOFF_S
    max_model_age_s: int | None = None
    last_run_at: datetime | None = None
    last_run_status: str | None = None
    last_finished_at: datetime | None = None
    manual_requested_at: datetime | None = None
    manual_reason: str | None = None
    drift_at: datetime | None = None
    drift_detail: str | None = None  # set when the newest drift result says drifted
    contract_detail: str | None = None  # set when that check found the data contract broken
    degraded_at: datetime | None = None
    degraded_detail: str | None = None  # set when the newest primary result says degraded
    active_created_at: datetime | None = None


@dataclass(frozen=True)
class Verdict:
    job: str
    model: str
    priority: int
    state: str  # due | running | backoff | not_due
    reasons: list[Reason] = field(default_factory=list)
    last_run_at: datetime | None = None
    next_fire: datetime | None = None
    detail: str | None = None

    @property
    def is_due(self) -> bool:
        return self.state == "due"

    @property
    def due_since(self) -> datetime | None:
        """When the job became due: its earliest reason."""
        return min((r.since for r in self.reasons if r.since is not None), default=None)


def by_turn(due: list[Verdict], now: datetime, max_wait_s: float) -> list[Verdict]:
    """Due jobs in the order they get slots: those due for `max_wait_s` or longer first, the
    longest waiting first; then the rest by priority and the oldest last run."""
    oldest = datetime.min.replace(tzinfo=UTC)

    def turn(verdict: Verdict) -> tuple[bool, float, datetime, str]:
        waited = (now - (verdict.due_since or now)).total_seconds()
        if waited >= max_wait_s:
            return (False, -waited, verdict.last_run_at or oldest, verdict.job)
        return (True, -verdict.priority, verdict.last_run_at or oldest, verdict.job)

    return sorted(due, key=turn)


def evaluate(state: JobState, now: datetime) -> Verdict:
    """The verdict on one job at `now`."""

    def verdict(
        name: str, reasons: list[Reason] | None = None, detail: str | None = None
    ) -> Verdict:
        return Verdict(
            state.job,
            state.model,
            state.priority,
            name,
            reasons or [],
            state.last_run_at,
            next_fire(state.schedule, state.timezone, now),
            detail,
        )

    if state.last_run_status == RunStatus.RUNNING:
        return verdict("running", detail=f"running since {state.last_run_at}")
    if state.last_run_status in FAILED:
        since = state.last_finished_at or state.last_run_at or now
        retry_at = since + timedelta(seconds=state.retry_backoff_s)
        if now < retry_at:
            return verdict(
                "backoff",
                detail=f"last run {state.last_run_status}; retry at {retry_at.isoformat()}",
            )
    candidates = (
        _manual(state),
        _drift(state),
        _data_quality(state),
        _performance(state),
        _age(state, now),
        _scheduled(state, now),
    )
    reasons = [r for r in candidates if r is not None and r.trigger in state.triggers]
    return verdict("due" if reasons else "not_due", reasons)


def _after_last_run(state: JobState, at: datetime | None) -> bool:
    return at is not None and (state.last_run_at is None or at > state.last_run_at)


def _manual(state: JobState) -> Reason | None:
    if not _after_last_run(state, state.manual_requested_at):
        return None
    return Reason(
        "manual",
        state.manual_reason or "requested with `jobs trigger`",
        since=state.manual_requested_at,
    )


def _drift(state: JobState) -> Reason | None:
    if state.drift_detail is None or not _after_last_run(state, state.drift_at):
        return None
    return Reason("drift", state.drift_detail, since=state.drift_at)


def _data_quality(state: JobState) -> Reason | None:
    if state.contract_detail is None or not _after_last_run(state, state.drift_at):
        return None
    return Reason("data_quality", state.contract_detail, since=state.drift_at)


def _performance(state: JobState) -> Reason | None:
    if state.degraded_detail is None or not _after_last_run(state, state.degraded_at):
        return None
    return Reason("performance", state.degraded_detail, since=state.degraded_at)


def _age(state: JobState, now: datetime) -> Reason | None:
    if state.max_model_age_s is None or state.active_created_at is None:
        return None
    age = now - state.active_created_at
    if age <= timedelta(seconds=state.max_model_age_s):
        return None
    return Reason(
        "age",
        f"active version is {age.days}d {age.seconds // 3600}h old "
        f"(max {timedelta(seconds=state.max_model_age_s)})",
        since=state.active_created_at + timedelta(seconds=state.max_model_age_s),
    )


def _scheduled(state: JobState, now: datetime) -> Reason | None:
    fire = last_fire(state.schedule, state.timezone, now)
    since = state.last_run_at or state.created_at
    if fire is None or fire <= since:
        return None
    detail = f"fire time {fire.isoformat()} ({state.schedule} {state.timezone})"
    return Reason("scheduled", detail, fire, since=_first_missed(state, since, fire))


MAX_WALK = 2016  # fire times walked back from the latest: a week of a five-minute schedule


def _first_missed(state: JobState, since: datetime, fire: datetime) -> datetime:
    """The first fire time after `since`, `fire` being the latest: looked up in the schedule's
    fire times walked back from `fire`, a walk shared by every job on that schedule (a job
    that missed more than MAX_WALK fire times is due since the oldest one walked)."""
    walk = _walk_back(state.schedule, state.timezone, fire)
    zone = ZoneInfo(state.timezone)
    while walk.fires[-1] > since and len(walk.fires) < MAX_WALK:
        before = _nearest_fire(state.schedule, zone, walk.fires[-1] - MINUTE, previous=True)
        if before is None:
            break
        walk.fires.append(before)
        walk.keys.append(-before.timestamp())
    index = bisect.bisect_left(walk.keys, -since.timestamp())  # the first one at or before
    return walk.fires[max(index - 1, 0)]


@dataclass
class _Walk:
    fires: list[datetime]  # newest first
    keys: list[float]  # -timestamp of each, ascending, for bisect


@lru_cache(maxsize=256)
def _walk_back(expression: str, timezone: str, latest: datetime) -> _Walk:
    return _Walk([latest], [-latest.timestamp()])


def last_fire(expression: str, timezone: str, now: datetime) -> datetime | None:
    """The latest fire time at or before `now`, as an aware UTC instant."""
    return _fire(expression, timezone, _minute(now), previous=True)


def next_fire(expression: str, timezone: str, now: datetime) -> datetime | None:
    """The first fire time after `now`, as an aware UTC instant."""
    return _fire(expression, timezone, _minute(now), previous=False)


def longest_gap(expression: str, timezone: str, now: datetime, fires: int = 16) -> float | None:
    """The longest time in seconds between consecutive fire times among the next `fires`: how
    long a healthy scheduled job may go without a run (`0 9 * * 1-5`: the weekend's 72 hours).

    >>> longest_gap("0 9 * * 1-5", "UTC", datetime(2026, 6, 1, tzinfo=UTC))
    259200.0
    """
    at = next_fire(expression, timezone, now)
    longest = None
    for _ in range(fires):
        after = None if at is None else next_fire(expression, timezone, at)
        if at is None or after is None:
            break
        longest = max(longest or 0.0, (after - at).total_seconds())
        at = after
    return longest


def _minute(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(second=0, microsecond=0)


MINUTE = timedelta(minutes=1)
DST_MARGIN = timedelta(hours=3)  # wider than any daylight-saving shift


@lru_cache(maxsize=4096)
def _fire(expression: str, timezone: str, now: datetime, *, previous: bool) -> datetime | None:
    """The nearest fire instant at/before (or after) `now`.

    Around a transition the wall clock jumps, so the order of wall-clock fire times and of their
    instants can differ; wall times within DST_MARGIN beyond `now` are compared by instant.
    Cached per (expression, zone, minute): thousands of jobs share a few schedules.
    """
    from croniter import CroniterBadDateError

    try:
        return _nearest_fire(expression, ZoneInfo(timezone), now, previous=previous)
    except CroniterBadDateError:
        raise ValueError(f"schedule {expression!r} never fires") from None


def _nearest_fire(
    expression: str, zone: ZoneInfo, now: datetime, *, previous: bool
) -> datetime | None:
    from croniter import croniter

    wall = now.astimezone(zone).replace(tzinfo=None)
    if (now - DST_MARGIN).astimezone(zone).utcoffset() == (now + DST_MARGIN).astimezone(
        zone
    ).utcoffset():  # no transition near: wall clock and instants keep their order
        cursor = _parsed(expression)  # parsing costs more than the step itself
        if previous:  # get_prev is strictly before its start: a minute on a fire time counts
            cursor.set_current(wall + timedelta(seconds=1), force=True)
            return to_instant(cursor.get_prev(datetime), zone)
        cursor.set_current(wall, force=True)
        return to_instant(cursor.get_next(datetime), zone)
    if previous:
        cursor = croniter(expression, wall + DST_MARGIN + timedelta(seconds=1))
        step, stop = cursor.get_prev, wall - DST_MARGIN
    else:
        cursor = croniter(expression, wall - DST_MARGIN)
        step, stop = cursor.get_next, wall + DST_MARGIN
    best: datetime | None = None
    for _ in range(100_000):
        candidate = step(datetime)
        instant = to_instant(candidate, zone)
        on_side = (instant <= now) if previous else (instant > now)
        nearer = best is None or ((instant > best) if previous else (instant < best))
        if on_side and nearer:
            best = instant
        if best is not None and ((candidate < stop) if previous else (candidate > stop)):
            return best
    return best


@lru_cache(maxsize=256)
def _parsed(expression: str) -> Any:
    """One parsed croniter per expression, moved with `set_current` (single-threaded use)."""
    from croniter import croniter

    return croniter(expression, datetime(2000, 1, 1))


def to_instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """A local wall-clock time as a UTC instant (PEP 495, fold=0): a repeated time (fall back)
    is its first occurrence; a time inside a spring-forward gap keeps the offset from before the
    gap (London's 01:30 on that Sunday fires at 02:30 BST)."""
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)
