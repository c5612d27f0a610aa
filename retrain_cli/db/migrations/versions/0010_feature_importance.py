"""feature importance: each version's share of its features' importance

Revision ID: 0010_feature_importance
Revises: 0009_task_defaults
Create Date: 2026-12-07 05:00:00.000000

A nullable document, `{feature: share}` summing to 1 (LightGBM's gain, or permutation
importance on the hold-out): drift checks with `drift.weighting: importance` weigh each
feature by the active version's share. Versions made before it have none.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0010_feature_importance"
down_revision: str | None = "0009_task_defaults"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "model_version_management"


def upgrade() -> None:
    document = sa.JSON().with_variant(JSONB(), "postgresql")
    op.add_column(TABLE, sa.Column("importance", document, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table(TABLE) as table:
        table.drop_column("importance")
