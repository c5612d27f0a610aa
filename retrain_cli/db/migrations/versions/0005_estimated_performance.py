"""estimated performance: a performance row estimated without labels (CBPE)

Revision ID: 0005_estimated_performance
Revises: 0004_reference_profiles
Create Date: 2026-12-02 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_estimated_performance"
down_revision: str | None = "0004_reference_profiles"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "model_performance_tracking",
        sa.Column("estimated", sa.Boolean(), server_default=sa.false(), nullable=False),
    )


def downgrade() -> None:
    op.drop_column("model_performance_tracking", "estimated")
