"""performance row kinds: model_performance_tracking.kind, backfilled and indexed

Revision ID: 0007_performance_row_kinds
Revises: 0006_rollouts
Create Date: 2026-12-06 22:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_performance_row_kinds"
down_revision: str | None = "0006_rollouts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KINDS = ("checked", "estimated", "realized", "calibration", "change_point", "rollout")
TABLE = "model_performance_tracking"
# Before this revision a row's kind was told by its metric's prefix and its flags. A realized
# value is a labelled, unjudged row in the window of an estimate of the same metric.
BACKFILL = f"""
UPDATE {TABLE} SET kind = CASE
    WHEN metric LIKE 'change_point:%' THEN 'change_point'
    WHEN metric LIKE 'rollout:%' THEN 'rollout'
    WHEN estimated AND metric = 'calibration_brier' THEN 'calibration'
    WHEN estimated THEN 'estimated'
    WHEN NOT is_primary AND EXISTS (
        SELECT 1 FROM {TABLE} AS e
        WHERE e.estimated AND e.model_name = {TABLE}.model_name AND e.metric = {TABLE}.metric
          AND e.window_start = {TABLE}.window_start AND e.window_end = {TABLE}.window_end
          AND e.checked_at < {TABLE}.checked_at
    ) THEN 'realized'
    ELSE 'checked'
END
"""


def upgrade() -> None:
    op.add_column(TABLE, sa.Column("kind", sa.String(16), nullable=True))
    op.execute(BACKFILL)
    kinds = ", ".join(repr(k) for k in KINDS)
    with op.batch_alter_table(TABLE) as table:
        table.alter_column("kind", existing_type=sa.String(16), nullable=False)
        table.create_check_constraint(op.f(f"ck_{TABLE}_kind"), f"kind IN ({kinds})")
    op.create_index(
        op.f(f"ix_{TABLE}_model_name_kind_checked_at"), TABLE, ["model_name", "kind", "checked_at"]
    )


def downgrade() -> None:
    op.drop_index(op.f(f"ix_{TABLE}_model_name_kind_checked_at"), TABLE)
    with op.batch_alter_table(TABLE) as table:
        table.drop_constraint(op.f(f"ck_{TABLE}_kind"), type_="check")
        table.drop_column("kind")
