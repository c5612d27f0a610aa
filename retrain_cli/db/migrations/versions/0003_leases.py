"""leases: slots, lease expiry and fire times on runs

Revision ID: 0003_leases
Revises: 0002_version_events
Create Date: 2026-11-26 19:40:38.530458
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_leases"
down_revision: str | None = "0002_version_events"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.add_column("retraining_job_history", sa.Column("slot", sa.Integer(), nullable=True))
    op.add_column(
        "retraining_job_history",
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.add_column(
        "retraining_job_history",
        sa.Column("scheduled_for", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index(
        "ux_retraining_job_history_job_fire_time",
        "retraining_job_history",
        ["job_id", "scheduled_for"],
        unique=True,
    )
    op.create_index(
        "ux_retraining_job_history_running_slot",
        "retraining_job_history",
        ["slot"],
        unique=True,
        sqlite_where=sa.text("status = 'running' AND slot IS NOT NULL"),
        postgresql_where=sa.text("status = 'running' AND slot IS NOT NULL"),
    )


def downgrade() -> None:

    op.drop_index(
        "ux_retraining_job_history_running_slot",
        table_name="retraining_job_history",
        sqlite_where=sa.text("status = 'running' AND slot IS NOT NULL"),
        postgresql_where=sa.text("status = 'running' AND slot IS NOT NULL"),
    )
    op.drop_index("ux_retraining_job_history_job_fire_time", table_name="retraining_job_history")
    op.drop_column("retraining_job_history", "scheduled_for")
    op.drop_column("retraining_job_history", "lease_expires_at")
    op.drop_column("retraining_job_history", "slot")
