"""rollouts: candidate versions, their steps and analyses

Revision ID: 0006_rollouts
Revises: 0005_estimated_performance
Create Date: 2026-12-02 13:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006_rollouts"
down_revision: str | None = "0005_estimated_performance"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = ("registered", "candidate", "active", "retired")
EVENTS = ("promote", "rollback", "candidate", "step", "abort")
OLD_STATUSES = ("registered", "active", "retired")
OLD_EVENTS = ("promote", "rollback")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _checks(statuses: tuple[str, ...], events: tuple[str, ...]) -> None:
    with op.batch_alter_table("model_version_management") as table:
        table.drop_constraint(op.f("ck_model_version_management_status"), type_="check")
        table.create_check_constraint(
            op.f("ck_model_version_management_status"), _in("status", statuses)
        )
    with op.batch_alter_table("model_version_events") as table:
        table.drop_constraint(op.f("ck_model_version_events_event"), type_="check")
        table.create_check_constraint(op.f("ck_model_version_events_event"), _in("event", events))


def upgrade() -> None:
    document = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    _checks(STATUSES, EVENTS)
    op.add_column("model_version_events", sa.Column("from_weight", sa.Float(), nullable=True))
    op.add_column("model_version_events", sa.Column("to_weight", sa.Float(), nullable=True))
    op.add_column("model_version_events", sa.Column("details", document, nullable=True))
    op.add_column("model_performance_tracking", sa.Column("details", document, nullable=True))
    op.create_index(
        "ux_model_version_management_one_candidate",
        "model_version_management",
        ["model_name"],
        unique=True,
        sqlite_where=sa.text("status = 'candidate'"),
        postgresql_where=sa.text("status = 'candidate'"),
    )


def downgrade() -> None:
    op.drop_index("ux_model_version_management_one_candidate", "model_version_management")
    op.drop_column("model_performance_tracking", "details")
    op.drop_column("model_version_events", "details")
    op.drop_column("model_version_events", "to_weight")
    op.drop_column("model_version_events", "from_weight")
    _checks(OLD_STATUSES, OLD_EVENTS)
