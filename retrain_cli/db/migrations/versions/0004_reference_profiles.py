"""reference profiles: a job's stored profile of its reference window

Revision ID: 0004_reference_profiles
Revises: 0003_leases
Create Date: 2026-12-02 04:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004_reference_profiles"
down_revision: str | None = "0003_leases"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    document = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    op.add_column("auto_retraining_jobs", sa.Column("reference_profile", document, nullable=True))


def downgrade() -> None:
    op.drop_column("auto_retraining_jobs", "reference_profile")
