"""The report's data, typed: a period's axis of buckets, series, the drift heatmap, events, runs
and versions per model (`data` fills them from the tables; `charts` and `pages` draw them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, cast, extract

from retrain_cli.ops.stats import JobStats

BUCKETS = 300  # the most points of a chart over the whole period


@dataclass(frozen=True)
class Axis:
    """The period split into equal buckets; bucket `b` is drawn at its middle."""

    since: datetime
    now: datetime
    width_s: int

    @classmethod
    def of(cls, since: datetime, now: datetime) -> Axis:
        since = since.replace(microsecond=0)  # buckets start on whole seconds, as in SQL
        seconds = max(int((now - since).total_seconds()), 1)
        return cls(since, now, max(-(-seconds // BUCKETS), 1))

    def at(self, bucket: int) -> datetime:
        return self.since + timedelta(seconds=(bucket + 0.5) * self.width_s)

    def bucket(self, column: Any) -> Any:
        """The SQL bucket number of a timestamp column (integer division on both backends;
        PostgreSQL rounds a fraction of a second where SQLite drops it, so a check within half
        a second of a boundary may fall on either side)."""
        epoch = cast(extract("epoch", column), BigInteger)
        return (epoch - int(self.since.timestamp())) // self.width_s


@dataclass(frozen=True)
class Series:
    times: list[datetime]
    values: list[float]


@dataclass(frozen=True)
class Heatmap:
    """Per feature and bucket, the worst drift score: the statistic over its threshold, or the
    threshold over the p-value for p-value methods, so that 1 is the alarm for every method.
    The buckets run from `start` to `end` without gaps (None where no check ran)."""

    features: list[str]
    methods: list[str]
    start: datetime
    end: datetime
    scores: list[list[float | None]]  # [feature][bucket]


@dataclass(frozen=True)
class Event:
    at: datetime
    event: str
    from_version: int | None
    to_version: int
    actor: str
    reason: str | None


@dataclass(frozen=True)
class Run:
    id: int
    job: str
    trigger: str
    trigger_detail: str | None
    status: str
    started_at: datetime
    duration_s: float | None
    error: str | None
    version: int | None
    promoted: bool | None


@dataclass(frozen=True)
class Version:
    version: int
    status: str
    parent: int | None
    strategy: str | None
    created_at: datetime
    promoted_at: datetime | None
    trigger: str | None
    decision: str | None
    reasons: list[str]
    primary: float | None


@dataclass(frozen=True)
class BrokenRule:
    """A rule of a job's data contract that a drift check found broken."""

    checked_at: datetime
    rule: str
    column: str | None
    message: str


@dataclass
class ModelHistory:
    model: str
    jobs: list[JobStats]
    axis: Axis
    metric: str | None = None
    realized: Series = field(default_factory=lambda: Series([], []))
    estimated: Series = field(default_factory=lambda: Series([], []))  # without labels (CBPE)
    threshold: Series = field(default_factory=lambda: Series([], []))
    baseline: Series = field(default_factory=lambda: Series([], []))
    degraded_at: list[datetime] = field(default_factory=list)
    change_points: list[datetime] = field(default_factory=list)  # where the error level changed
    drift_share: Series = field(default_factory=lambda: Series([], []))
    drift_alarm_share: float | None = None
    heatmap: Heatmap | None = None
    importance: dict[str, float] | None = None  # the active version's, each feature's share
    events: list[Event] = field(default_factory=list)
    runs: list[Run] = field(default_factory=list)
    versions: list[Version] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)
    contract: list[BrokenRule] = field(default_factory=list)  # newest first


@dataclass
class History:
    now: datetime
    since: datetime
    slots_in_use: int
    database_slots: list[dict[str, Any]]
    models: list[ModelHistory]
