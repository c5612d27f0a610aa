"""runs an operator can cancel, and checks recorded per window

Revision ID: 0011_runs_and_windows
Revises: 0010_feature_importance
Create Date: 2026-12-07 06:00:00.000000

`retraining_job_history` gets the `cancelled` status, who asked for it and when
(`cancel_requested_at`: the running process reads it with its heartbeat and stops), and the
wall seconds of each phase the run reached (`phases`), and the `data_quality` trigger. Drift
rows get the scope `contract`: a rule of the job's data contract that the window broke. The
check tables get `backfilled` (`jobs backfill` recorded the row for a past window); the drift
table gets the window's
bounds, which the performance table already has; a unique key per job, window and kind lets
a backfill run again without recording a window twice.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0011_runs_and_windows"
down_revision: str | None = "0010_feature_importance"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RUNS = "retraining_job_history"
DRIFT = "model_drift_monitoring"
PERF = "model_performance_tracking"
STATUSES = "status IN ('running', 'succeeded', 'failed', 'skipped', 'abandoned'{})"
TRIGGERS = "trigger IN ('scheduled', 'drift', 'performance', 'age', 'manual'{})"
SCOPES = "scope IN ('feature', 'dataset', 'prediction', 'target'{})"
BACKFILLED = "backfilled AND scope = 'dataset'"


def upgrade() -> None:
    document = sa.JSON().with_variant(JSONB(), "postgresql")
    with op.batch_alter_table(RUNS) as table:
        table.add_column(sa.Column("cancel_requested_at", sa.DateTime(timezone=True)))
        table.add_column(sa.Column("cancelled_by", sa.String(255)))
        table.add_column(sa.Column("phases", document))
        table.drop_constraint(op.f(f"ck_{RUNS}_status"), type_="check")
        table.create_check_constraint(op.f(f"ck_{RUNS}_status"), STATUSES.format(", 'cancelled'"))
        table.drop_constraint(op.f(f"ck_{RUNS}_trigger"), type_="check")
        table.create_check_constraint(
            op.f(f"ck_{RUNS}_trigger"), TRIGGERS.format(", 'data_quality'")
        )
    with op.batch_alter_table(DRIFT) as table:
        table.drop_constraint(op.f(f"ck_{DRIFT}_scope"), type_="check")
        table.create_check_constraint(op.f(f"ck_{DRIFT}_scope"), SCOPES.format(", 'contract'"))
    for name in (DRIFT, PERF):
        op.add_column(
            name,
            sa.Column("backfilled", sa.Boolean(), nullable=False, server_default=sa.false()),
        )
    op.add_column(DRIFT, sa.Column("window_start", sa.DateTime(timezone=True)))
    op.add_column(DRIFT, sa.Column("window_end", sa.DateTime(timezone=True)))
    op.create_index(
        "ux_model_drift_monitoring_backfilled_window",
        DRIFT,
        ["job_id", "window_start", "window_end"],
        unique=True,
        sqlite_where=sa.text(BACKFILLED),
        postgresql_where=sa.text(BACKFILLED),
    )
    op.create_index(
        "ux_model_performance_tracking_backfilled_window",
        PERF,
        ["job_id", "kind", "window_start", "window_end", "metric"],
        unique=True,
        sqlite_where=sa.text("backfilled"),
        postgresql_where=sa.text("backfilled"),
    )


def downgrade() -> None:
    op.drop_index("ux_model_performance_tracking_backfilled_window", PERF)
    op.drop_index("ux_model_drift_monitoring_backfilled_window", DRIFT)
    op.execute(f"DELETE FROM {DRIFT} WHERE scope = 'contract'")
    with op.batch_alter_table(DRIFT) as table:
        table.drop_constraint(op.f(f"ck_{DRIFT}_scope"), type_="check")
        table.create_check_constraint(op.f(f"ck_{DRIFT}_scope"), SCOPES.format(""))
        table.drop_column("window_end")
        table.drop_column("window_start")
        table.drop_column("backfilled")
    with op.batch_alter_table(PERF) as table:
        table.drop_column("backfilled")
    op.execute(f"UPDATE {RUNS} SET status = 'failed' WHERE status = 'cancelled'")
    op.execute(f"UPDATE {RUNS} SET trigger = 'manual' WHERE trigger = 'data_quality'")
    with op.batch_alter_table(RUNS) as table:
        table.drop_constraint(op.f(f"ck_{RUNS}_trigger"), type_="check")
        table.create_check_constraint(op.f(f"ck_{RUNS}_trigger"), TRIGGERS.format(""))
        table.drop_constraint(op.f(f"ck_{RUNS}_status"), type_="check")
        table.create_check_constraint(op.f(f"ck_{RUNS}_status"), STATUSES.format(""))
        table.drop_column("phases")
        table.drop_column("cancelled_by")
        table.drop_column("cancel_requested_at")
