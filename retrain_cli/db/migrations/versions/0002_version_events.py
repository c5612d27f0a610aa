"""model_version_events: the promotion audit log

Revision ID: 0002_version_events
Revises: 0001_baseline
Create Date: 2026-11-26 19:18:04.721856
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_version_events"
down_revision: str | None = "0001_baseline"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "model_version_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_name", sa.String(length=128), nullable=False),
        sa.Column("event", sa.String(length=16), nullable=False),
        sa.Column("from_version", sa.Integer(), nullable=True),
        sa.Column("to_version", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("job_id", sa.Integer(), nullable=True),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "event IN ('promote', 'rollback')", name=op.f("ck_model_version_events_event")
        ),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["auto_retraining_jobs.id"],
            name=op.f("fk_model_version_events_job_id_auto_retraining_jobs"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["retraining_job_history.id"],
            name=op.f("fk_model_version_events_run_id_retraining_job_history"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_version_events")),
    )
    op.create_index(
        op.f("ix_model_version_events_model_name_at"),
        "model_version_events",
        ["model_name", "at"],
        unique=False,
    )


def downgrade() -> None:

    op.drop_index(op.f("ix_model_version_events_model_name_at"), table_name="model_version_events")
    op.drop_table("model_version_events")
