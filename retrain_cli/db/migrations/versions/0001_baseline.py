"""baseline: the six tables

Revision ID: 0001_baseline
Revises: (none)
Create Date: 2026-11-26 18:34:58.806032
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001_baseline"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "auto_retraining_config",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_type", sa.String(length=32), nullable=False),
        sa.Column("schedule", sa.String(length=128), nullable=False),
        sa.Column("drift_threshold", sa.Float(), nullable=False),
        sa.Column("performance_threshold", sa.Float(), nullable=False),
        sa.Column("strategy", sa.String(length=16), nullable=False),
        sa.Column("max_model_age_s", sa.BigInteger(), nullable=True),
        sa.Column(
            "hyperparameters",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "strategy IN ('incremental', 'full')", name=op.f("ck_auto_retraining_config_strategy")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auto_retraining_config")),
        sa.UniqueConstraint("model_type", name=op.f("uq_auto_retraining_config_model_type")),
    )
    op.create_table(
        "auto_retraining_jobs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("model_name", sa.String(length=128), nullable=False),
        sa.Column("model_type", sa.String(length=32), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("schedule", sa.String(length=128), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("drift_threshold", sa.Float(), nullable=True),
        sa.Column("performance_threshold", sa.Float(), nullable=True),
        sa.Column("strategy", sa.String(length=16), nullable=True),
        sa.Column("primary_metric", sa.String(length=32), nullable=False),
        sa.Column("timeout_s", sa.BigInteger(), nullable=True),
        sa.Column("max_model_age_s", sa.BigInteger(), nullable=True),
        sa.Column(
            "triggers",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "spec",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("source_file", sa.Text(), nullable=True),
        sa.Column("manual_requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("manual_reason", sa.Text(), nullable=True),
        sa.Column("last_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_run_status", sa.String(length=16), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "strategy IS NULL OR strategy IN ('incremental', 'full')",
            name=op.f("ck_auto_retraining_jobs_strategy"),
        ),
        sa.ForeignKeyConstraint(
            ["model_type"],
            ["auto_retraining_config.model_type"],
            name=op.f("fk_auto_retraining_jobs_model_type_auto_retraining_config"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auto_retraining_jobs")),
        sa.UniqueConstraint("name", name=op.f("uq_auto_retraining_jobs_name")),
    )
    op.create_index(
        op.f("ix_auto_retraining_jobs_model_name"),
        "auto_retraining_jobs",
        ["model_name"],
        unique=False,
    )
    op.create_table(
        "model_drift_monitoring",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("check_id", sa.String(length=32), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("model_name", sa.String(length=128), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("feature", sa.String(length=255), nullable=True),
        sa.Column("kind", sa.String(length=16), nullable=True),
        sa.Column("method", sa.String(length=32), nullable=False),
        sa.Column("statistic", sa.Float(), nullable=True),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("drifted", sa.Boolean(), nullable=False),
        sa.Column("drift_share", sa.Float(), nullable=True),
        sa.Column("n_reference", sa.BigInteger(), nullable=False),
        sa.Column("n_current", sa.BigInteger(), nullable=False),
        sa.Column("missing_rate_ref", sa.Float(), nullable=True),
        sa.Column("missing_rate_cur", sa.Float(), nullable=True),
        sa.Column(
            "metrics",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "scope IN ('feature', 'dataset', 'prediction')",
            name=op.f("ck_model_drift_monitoring_scope"),
        ),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["auto_retraining_jobs.id"],
            name=op.f("fk_model_drift_monitoring_job_id_auto_retraining_jobs"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_drift_monitoring")),
    )
    op.create_index(
        op.f("ix_model_drift_monitoring_check_id"),
        "model_drift_monitoring",
        ["check_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_model_drift_monitoring_model_name_scope_checked_at"),
        "model_drift_monitoring",
        ["model_name", "scope", "checked_at"],
        unique=False,
    )
    op.create_table(
        "model_performance_tracking",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("check_id", sa.String(length=32), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("model_name", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=True),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("metric", sa.String(length=32), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("baseline", sa.Float(), nullable=True),
        sa.Column("is_primary", sa.Boolean(), nullable=False),
        sa.Column("degraded", sa.Boolean(), nullable=True),
        sa.Column("n_samples", sa.BigInteger(), nullable=False),
        sa.Column("n_dropped", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["auto_retraining_jobs.id"],
            name=op.f("fk_model_performance_tracking_job_id_auto_retraining_jobs"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_performance_tracking")),
    )
    op.create_index(
        op.f("ix_model_performance_tracking_check_id"),
        "model_performance_tracking",
        ["check_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_model_performance_tracking_model_name_checked_at"),
        "model_performance_tracking",
        ["model_name", "checked_at"],
        unique=False,
    )
    op.create_table(
        "model_version_management",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_name", sa.String(length=128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("model_type", sa.String(length=32), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("artifact_path", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("strategy", sa.String(length=16), nullable=True),
        sa.Column("parent_version", sa.Integer(), nullable=True),
        sa.Column(
            "metrics",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "hyperparameters",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "data_fingerprint",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("promoted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('registered', 'active', 'retired')",
            name=op.f("ck_model_version_management_status"),
        ),
        sa.CheckConstraint(
            "version >= 1", name=op.f("ck_model_version_management_version_positive")
        ),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["auto_retraining_jobs.id"],
            name=op.f("fk_model_version_management_job_id_auto_retraining_jobs"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["model_type"],
            ["auto_retraining_config.model_type"],
            name=op.f("fk_model_version_management_model_type_auto_retraining_config"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_version_management")),
        sa.UniqueConstraint(
            "model_name", "version", name=op.f("uq_model_version_management_model_name_version")
        ),
    )
    op.create_index(
        "ux_model_version_management_one_active",
        "model_version_management",
        ["model_name"],
        unique=True,
        sqlite_where=sa.text("status = 'active'"),
        postgresql_where=sa.text("status = 'active'"),
    )
    op.create_table(
        "retraining_job_history",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("trigger_detail", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("version_id", sa.Integer(), nullable=True),
        sa.Column("promoted", sa.Boolean(), nullable=True),
        sa.Column(
            "gate",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.CheckConstraint(
            "status IN ('running', 'succeeded', 'failed', 'skipped', 'abandoned')",
            name=op.f("ck_retraining_job_history_status"),
        ),
        sa.CheckConstraint(
            "trigger IN ('scheduled', 'drift', 'performance', 'age', 'manual')",
            name=op.f("ck_retraining_job_history_trigger"),
        ),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["auto_retraining_jobs.id"],
            name=op.f("fk_retraining_job_history_job_id_auto_retraining_jobs"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["version_id"],
            ["model_version_management.id"],
            name=op.f("fk_retraining_job_history_version_id_model_version_management"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retraining_job_history")),
    )
    op.create_index(
        op.f("ix_retraining_job_history_job_id_started_at"),
        "retraining_job_history",
        ["job_id", "started_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_retraining_job_history_status_started_at"),
        "retraining_job_history",
        ["status", "started_at"],
        unique=False,
    )
    op.create_index(
        "ux_retraining_job_history_running_job",
        "retraining_job_history",
        ["job_id"],
        unique=True,
        sqlite_where=sa.text("status = 'running'"),
        postgresql_where=sa.text("status = 'running'"),
    )


def downgrade() -> None:

    op.drop_index(
        "ux_retraining_job_history_running_job",
        table_name="retraining_job_history",
        sqlite_where=sa.text("status = 'running'"),
        postgresql_where=sa.text("status = 'running'"),
    )
    op.drop_index(
        op.f("ix_retraining_job_history_status_started_at"), table_name="retraining_job_history"
    )
    op.drop_index(
        op.f("ix_retraining_job_history_job_id_started_at"), table_name="retraining_job_history"
    )
    op.drop_table("retraining_job_history")
    op.drop_index(
        "ux_model_version_management_one_active",
        table_name="model_version_management",
        sqlite_where=sa.text("status = 'active'"),
        postgresql_where=sa.text("status = 'active'"),
    )
    op.drop_table("model_version_management")
    op.drop_index(
        op.f("ix_model_performance_tracking_model_name_checked_at"),
        table_name="model_performance_tracking",
    )
    op.drop_index(
        op.f("ix_model_performance_tracking_check_id"), table_name="model_performance_tracking"
    )
    op.drop_table("model_performance_tracking")
    op.drop_index(
        op.f("ix_model_drift_monitoring_model_name_scope_checked_at"),
        table_name="model_drift_monitoring",
    )
    op.drop_index(op.f("ix_model_drift_monitoring_check_id"), table_name="model_drift_monitoring")
    op.drop_table("model_drift_monitoring")
    op.drop_index(op.f("ix_auto_retraining_jobs_model_name"), table_name="auto_retraining_jobs")
    op.drop_table("auto_retraining_jobs")
    op.drop_table("auto_retraining_config")
