"""registry identity: one row naming this database, which a RETRAIN_HOME records as its owner

Revision ID: 0008_registry_identity
Revises: 0007_performance_row_kinds
Create Date: 2026-12-07 00:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_registry_identity"
down_revision: str | None = "0007_performance_row_kinds"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# The id is drawn by the database itself, so that schemas.sql gives every database its own.
NEW_ID = {
    "postgresql": "INSERT INTO registry_identity (id, created_at) "
    "VALUES (replace(gen_random_uuid()::text, '-', ''), now())",
    "sqlite": "INSERT INTO registry_identity (id, created_at) "
    "VALUES (lower(hex(randomblob(16))), datetime('now'))",
}


def upgrade() -> None:
    op.create_table(
        "registry_identity",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_registry_identity")),
    )
    op.execute(NEW_ID[op.get_context().dialect.name])


def downgrade() -> None:
    op.drop_table("registry_identity")
