"""task defaults: auto_retraining_config keyed by (model_type, task); jobs and versions
say their task

Revision ID: 0009_task_defaults
Revises: 0008_registry_identity
Create Date: 2026-12-07 04:00:00.000000

Every existing row is a binary one: the config rows keep their values as the binary defaults
(their threshold is an AUC's), every job and version becomes `binary`. Drift rows get a fourth
scope, `target` (its drift once labels arrive). `db init` then seeds the
multiclass and regression rows. On SQLite, `db init` runs this with foreign keys off and checks
them before it commits (a table that others reference is rebuilt).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_task_defaults"
down_revision: str | None = "0008_registry_identity"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CONFIG = "auto_retraining_config"
DRIFT = "model_drift_monitoring"
SCOPES = "scope IN ('feature', 'dataset', 'prediction'{})"
CHILDREN = ("auto_retraining_jobs", "model_version_management")
TASKS = "task IN ('binary', 'multiclass', 'regression')"


def _task() -> sa.Column[str]:
    return sa.Column("task", sa.String(16), nullable=False, server_default="binary")


def upgrade() -> None:
    for child in CHILDREN:
        with op.batch_alter_table(child) as table:
            table.drop_constraint(op.f(f"fk_{child}_model_type_{CONFIG}"), type_="foreignkey")
    with op.batch_alter_table(CONFIG) as table:
        table.drop_constraint(op.f(f"uq_{CONFIG}_model_type"), type_="unique")
        table.add_column(_task())
        table.add_column(
            sa.Column("performance_metric", sa.String(32), nullable=False, server_default="auc")
        )
        table.create_unique_constraint(op.f(f"uq_{CONFIG}_model_type_task"), ["model_type", "task"])
        table.create_check_constraint(op.f(f"ck_{CONFIG}_task"), TASKS)
    for child in CHILDREN:
        with op.batch_alter_table(child) as table:
            table.add_column(_task())
            table.create_foreign_key(
                op.f(f"fk_{child}_model_type_{CONFIG}"),
                CONFIG,
                ["model_type", "task"],
                ["model_type", "task"],
            )
    # the target's drift, once labels arrive, is a row of its own
    with op.batch_alter_table(DRIFT) as table:
        table.drop_constraint(op.f(f"ck_{DRIFT}_scope"), type_="check")
        table.create_check_constraint(op.f(f"ck_{DRIFT}_scope"), SCOPES.format(", 'target'"))


def downgrade() -> None:
    op.execute(f"DELETE FROM {DRIFT} WHERE scope = 'target'")
    with op.batch_alter_table(DRIFT) as table:
        table.drop_constraint(op.f(f"ck_{DRIFT}_scope"), type_="check")
        table.create_check_constraint(op.f(f"ck_{DRIFT}_scope"), SCOPES.format(""))
    for child in CHILDREN:
        with op.batch_alter_table(child) as table:
            table.drop_constraint(op.f(f"fk_{child}_model_type_{CONFIG}"), type_="foreignkey")
            table.drop_column("task")
    op.execute(f"DELETE FROM {CONFIG} WHERE task <> 'binary'")
    with op.batch_alter_table(CONFIG) as table:
        table.drop_constraint(op.f(f"ck_{CONFIG}_task"), type_="check")
        table.drop_constraint(op.f(f"uq_{CONFIG}_model_type_task"), type_="unique")
        table.drop_column("performance_metric")
        table.drop_column("task")
        table.create_unique_constraint(op.f(f"uq_{CONFIG}_model_type"), ["model_type"])
    for child in CHILDREN:
        with op.batch_alter_table(child) as table:
            table.create_foreign_key(
                op.f(f"fk_{child}_model_type_{CONFIG}"), CONFIG, ["model_type"], ["model_type"]
            )
