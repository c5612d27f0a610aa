"""The six tables, as typed SQLAlchemy 2 models: the one source of truth for the schema.

`schemas.sql` is the PostgreSQL rendering of these models, and every change after the baseline is
an Alembic migration under `retrain_cli/db/migrations/versions/`; tests prove all three agree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from retrain_cli.core.choices import (
    ModelType,
    RowKind,
    RunStatus,
    Strategy,
    Task,
    Trigger,
    VersionStatus,
    values,
)

MODEL_TYPES = values(ModelType)
TASKS = values(Task)
STRATEGIES = values(Strategy)
TRIGGERS = values(Trigger)
RUN_STATUSES = values(RunStatus)
VERSION_STATUSES = values(VersionStatus)
ROW_KINDS = values(RowKind)
# candidate: a rollout starts; step: its weight changes; abort: it ends without a promotion
VERSION_EVENTS = ("promote", "rollback", "candidate", "step", "abort")
SWITCH_EVENTS = ("promote", "rollback")  # the events that change the active version
DRIFT_SCOPES = ("feature", "dataset", "prediction", "target", "contract")

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware (SQLite keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; pass an aware datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONDocument = JSON().with_variant(JSONB(), "postgresql")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSONDocument,
        list[str]: JSONDocument,
    }


def _config_key(*, ondelete: str | None = None) -> ForeignKeyConstraint:
    """A row's model type and task, whose defaults are `auto_retraining_config`'s row."""
    return ForeignKeyConstraint(
        ["model_type", "task"],
        ["auto_retraining_config.model_type", "auto_retraining_config.task"],
        ondelete=ondelete,
    )


class AutoRetrainingConfig(Base):
    """Defaults per model type and task; a job's own values win over these.
    `performance_threshold` is a threshold of `performance_metric`, the task's default metric:
    a job judged by another metric has no default threshold."""

    __tablename__ = "auto_retraining_config"
    __table_args__ = (
        CheckConstraint(_in("strategy", STRATEGIES), name="strategy"),
        CheckConstraint(_in("task", TASKS), name="task"),
        UniqueConstraint("model_type", "task"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_type: Mapped[str] = mapped_column(String(32))
    task: Mapped[str] = mapped_column(String(16), default=Task.BINARY.value)
    schedule: Mapped[str] = mapped_column(String(128))
    drift_threshold: Mapped[float] = mapped_column(Float)
    performance_metric: Mapped[str] = mapped_column(String(32))
    performance_threshold: Mapped[float] = mapped_column(Float)
    strategy: Mapped[str] = mapped_column(String(16))
    max_model_age_s: Mapped[int | None] = mapped_column(BigInteger)
    hyperparameters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class AutoRetrainingJob(Base):
    """One declared retraining job, applied from YAML; `spec` keeps the validated document."""

    __tablename__ = "auto_retraining_jobs"
    __table_args__ = (
        CheckConstraint("strategy IS NULL OR " + _in("strategy", STRATEGIES), name="strategy"),
        Index(None, "model_name"),
        _config_key(),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    model_name: Mapped[str] = mapped_column(String(128))
    model_type: Mapped[str] = mapped_column(String(32))
    task: Mapped[str] = mapped_column(String(16), default=Task.BINARY.value)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    schedule: Mapped[str | None] = mapped_column(String(128))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    priority: Mapped[int] = mapped_column(Integer, default=0)
    drift_threshold: Mapped[float | None] = mapped_column(Float)
    performance_threshold: Mapped[float | None] = mapped_column(Float)
    strategy: Mapped[str | None] = mapped_column(String(16))
    primary_metric: Mapped[str] = mapped_column(String(32))
    timeout_s: Mapped[int | None] = mapped_column(BigInteger)
    max_model_age_s: Mapped[int | None] = mapped_column(BigInteger)
    triggers: Mapped[list[str]] = mapped_column()
    spec: Mapped[dict[str, Any]] = mapped_column()
    source_file: Mapped[str | None] = mapped_column(Text)
    manual_requested_at: Mapped[datetime | None]
    manual_reason: Mapped[str | None] = mapped_column(Text)
    last_run_at: Mapped[datetime | None]
    last_run_status: Mapped[str | None] = mapped_column(String(16))
    # the stored profile of the job's reference window: path, sha256, source, built_at
    reference_profile: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class RetrainingJobHistory(Base):
    """One attempt to retrain a job: who ran it, why, how it ended, and what it produced."""

    __tablename__ = "retraining_job_history"
    __table_args__ = (
        CheckConstraint(_in("status", RUN_STATUSES), name="status"),
        CheckConstraint(_in("trigger", TRIGGERS), name="trigger"),
        Index(None, "job_id", "started_at"),
        Index(None, "status", "started_at"),
        # The database, not only the per-job lockfile, refuses a second running row for a job.
        Index(
            "ux_retraining_job_history_running_job",
            "job_id",
            unique=True,
            sqlite_where=text("status = 'running'"),
            postgresql_where=text("status = 'running'"),
        ),
        # Many hosts: a retrain slot is held by at most one running row, and each scheduled
        # fire time of a job runs once (NULLs, for unscheduled runs, never collide).
        Index(
            "ux_retraining_job_history_running_slot",
            "slot",
            unique=True,
            sqlite_where=text("status = 'running' AND slot IS NOT NULL"),
            postgresql_where=text("status = 'running' AND slot IS NOT NULL"),
        ),
        Index("ux_retraining_job_history_job_fire_time", "job_id", "scheduled_for", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("auto_retraining_jobs.id", ondelete="CASCADE"))
    trigger: Mapped[str] = mapped_column(String(16))
    trigger_detail: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime]
    heartbeat_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    duration_s: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    version_id: Mapped[int | None] = mapped_column(
        ForeignKey("model_version_management.id", ondelete="SET NULL")
    )
    promoted: Mapped[bool | None] = mapped_column(Boolean)
    gate: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    slot: Mapped[int | None] = mapped_column(Integer)
    lease_expires_at: Mapped[datetime | None]
    scheduled_for: Mapped[datetime | None]
    # `runs cancel`: when and by whom; the running process reads it with its heartbeat
    cancel_requested_at: Mapped[datetime | None]
    cancelled_by: Mapped[str | None] = mapped_column(String(255))
    phases: Mapped[dict[str, float] | None] = mapped_column(JSONDocument)  # wall seconds each


class ModelDriftMonitoring(Base):
    """One drift result: a feature, the prediction column, or the dataset verdict of one check."""

    __tablename__ = "model_drift_monitoring"
    __table_args__ = (
        CheckConstraint(_in("scope", DRIFT_SCOPES), name="scope"),
        Index(None, "model_name", "scope", "checked_at"),
        Index(None, "check_id"),
        # `jobs backfill` records each past window of a job once
        Index(
            "ux_model_drift_monitoring_backfilled_window",
            "job_id",
            "window_start",
            "window_end",
            unique=True,
            sqlite_where=text("backfilled AND scope = 'dataset'"),
            postgresql_where=text("backfilled AND scope = 'dataset'"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    check_id: Mapped[str] = mapped_column(String(32))
    job_id: Mapped[int | None] = mapped_column(
        ForeignKey("auto_retraining_jobs.id", ondelete="SET NULL")
    )
    model_name: Mapped[str] = mapped_column(String(128))
    checked_at: Mapped[datetime]
    scope: Mapped[str] = mapped_column(String(16))
    feature: Mapped[str | None] = mapped_column(String(255))
    kind: Mapped[str | None] = mapped_column(String(16))
    method: Mapped[str] = mapped_column(String(32))
    statistic: Mapped[float | None] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    drifted: Mapped[bool] = mapped_column(Boolean)
    drift_share: Mapped[float | None] = mapped_column(Float)
    n_reference: Mapped[int] = mapped_column(BigInteger)
    n_current: Mapped[int] = mapped_column(BigInteger)
    missing_rate_ref: Mapped[float | None] = mapped_column(Float)
    missing_rate_cur: Mapped[float | None] = mapped_column(Float)
    metrics: Mapped[dict[str, Any]] = mapped_column()
    # the window a backfilled check covered (NULL for the checks cron runs on `data.current`)
    window_start: Mapped[datetime | None]
    window_end: Mapped[datetime | None]
    backfilled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class ModelPerformanceTracking(Base):
    """One metric of one performance check; NULL `value` with a `reason` when undefined."""

    __tablename__ = "model_performance_tracking"
    __table_args__ = (
        CheckConstraint(_in("kind", ROW_KINDS), name="kind"),
        Index(None, "model_name", "checked_at"),
        Index(None, "model_name", "kind", "checked_at"),
        Index(None, "check_id"),
        Index(
            "ux_model_performance_tracking_backfilled_window",
            "job_id",
            "kind",
            "window_start",
            "window_end",
            "metric",
            unique=True,
            sqlite_where=text("backfilled"),
            postgresql_where=text("backfilled"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    check_id: Mapped[str] = mapped_column(String(32))
    job_id: Mapped[int | None] = mapped_column(
        ForeignKey("auto_retraining_jobs.id", ondelete="SET NULL")
    )
    model_name: Mapped[str] = mapped_column(String(128))
    # what the row records (db/tracking.py): checked, estimated, realized, calibration, ...
    kind: Mapped[str] = mapped_column(String(16), default=RowKind.CHECKED.value)
    version: Mapped[int | None] = mapped_column(Integer)
    checked_at: Mapped[datetime]
    window_start: Mapped[datetime | None]
    window_end: Mapped[datetime | None]
    metric: Mapped[str] = mapped_column(String(32))
    value: Mapped[float | None] = mapped_column(Float)
    reason: Mapped[str | None] = mapped_column(String(32))
    threshold: Mapped[float | None] = mapped_column(Float)
    baseline: Mapped[float | None] = mapped_column(Float)
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False)
    degraded: Mapped[bool | None] = mapped_column(Boolean)
    # estimated without labels (CBPE); False: realized on labelled predictions
    estimated: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    n_samples: Mapped[int] = mapped_column(BigInteger)
    n_dropped: Mapped[int] = mapped_column(BigInteger, default=0)
    # a rollout's analysis (metric `rollout:<metric>`): the comparison's numbers
    details: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    # recorded by `jobs backfill` for the past window [window_start, window_end)
    backfilled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class ModelVersionManagement(Base):
    """A trained version of a model; at most one per model is `active` (the database says so)."""

    __tablename__ = "model_version_management"
    __table_args__ = (
        UniqueConstraint("model_name", "version"),
        CheckConstraint(_in("status", VERSION_STATUSES), name="status"),
        _config_key(),
        CheckConstraint("version >= 1", name="version_positive"),
        Index(
            "ux_model_version_management_one_active",
            "model_name",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
        Index(
            "ux_model_version_management_one_candidate",
            "model_name",
            unique=True,
            sqlite_where=text("status = 'candidate'"),
            postgresql_where=text("status = 'candidate'"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_name: Mapped[str] = mapped_column(String(128))
    version: Mapped[int] = mapped_column(Integer)
    model_type: Mapped[str] = mapped_column(String(32))
    task: Mapped[str] = mapped_column(String(16), default=Task.BINARY.value)
    job_id: Mapped[int | None] = mapped_column(
        ForeignKey("auto_retraining_jobs.id", ondelete="SET NULL")
    )
    status: Mapped[str] = mapped_column(String(16))
    artifact_path: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    strategy: Mapped[str | None] = mapped_column(String(16))
    parent_version: Mapped[int | None] = mapped_column(Integer)
    metrics: Mapped[dict[str, Any]] = mapped_column()
    hyperparameters: Mapped[dict[str, Any]] = mapped_column()
    data_fingerprint: Mapped[dict[str, Any]] = mapped_column()
    # each feature's share of the model's importance (sums to 1; all 0 when nothing mattered)
    importance: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    created_at: Mapped[datetime]
    promoted_at: Mapped[datetime | None]
    retired_at: Mapped[datetime | None]


class ModelVersionEvent(Base):
    """An append-only audit row: who made which version active, when, why, and from which; and
    each step of a rollout (`to_version` is the candidate, weights are its share of traffic).

    The seventh table (see README): "what was active at T" and "the previous champion" are
    queries over these facts, which are never updated.
    """

    __tablename__ = "model_version_events"
    __table_args__ = (
        CheckConstraint(_in("event", VERSION_EVENTS), name="event"),
        Index(None, "model_name", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_name: Mapped[str] = mapped_column(String(128))
    event: Mapped[str] = mapped_column(String(16))
    from_version: Mapped[int | None] = mapped_column(Integer)
    to_version: Mapped[int] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(String(255))
    reason: Mapped[str | None] = mapped_column(Text)
    job_id: Mapped[int | None] = mapped_column(
        ForeignKey("auto_retraining_jobs.id", ondelete="SET NULL")
    )
    run_id: Mapped[int | None] = mapped_column(
        ForeignKey("retraining_job_history.id", ondelete="SET NULL")
    )
    at: Mapped[datetime]
    from_weight: Mapped[float | None] = mapped_column(Float)
    to_weight: Mapped[float | None] = mapped_column(Float)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)  # the analysis


class RegistryIdentity(Base):
    """One row: the id that tells this database apart from every other, made by `db init`. A
    RETRAIN_HOME records the id of the database that owns it (see `core.ownership`). A copy of
    the database (a restored backup, a template clone) keeps the id."""

    __tablename__ = "registry_identity"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[datetime]


TABLE_NAMES = tuple(sorted(Base.metadata.tables))
