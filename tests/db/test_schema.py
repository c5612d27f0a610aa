from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, func, inspect, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from retrain_cli.db.models import (
    TABLE_NAMES,
    AutoRetrainingConfig,
    AutoRetrainingJob,
    Base,
    ModelVersionManagement,
)
from retrain_cli.db.schema import alembic_config, init_database, render_postgresql_ddl
from retrain_cli.db.session import SCHEMA_REVISION, make_engine

NOW = datetime(2026, 1, 1, tzinfo=UTC)
SCHEMAS_SQL = Path(__file__).resolve().parents[2] / "schemas.sql"
SessionFactory = Callable[[], AbstractContextManager[Session]]


def test_the_six_seed_tables_and_the_audit_log() -> None:
    assert set(TABLE_NAMES) == {
        "auto_retraining_config",
        "auto_retraining_jobs",
        "retraining_job_history",
        "model_drift_monitoring",
        "model_performance_tracking",
        "model_version_management",
        "model_version_events",  # the seventh: the promotion audit log (see README)
        "registry_identity",  # one row: the id a RETRAIN_HOME records as its owner
    }


def test_init_creates_the_tables_and_a_default_config_per_model_type_and_task(
    empty_db_url: str,
) -> None:
    engine = make_engine(empty_db_url)
    result = init_database(engine, NOW)
    assert result.revision_before is None and result.revision == SCHEMA_REVISION
    assert set(inspect(engine).get_table_names()) == {*TABLE_NAMES, "alembic_version"}
    with Session(engine) as session:
        rows = {(c.model_type, c.task): c for c in session.scalars(select(AutoRetrainingConfig))}
    described = {
        key: (r.schedule, r.drift_threshold, r.performance_metric, r.performance_threshold)
        for key, r in rows.items()
    }
    assert {k: v for k, v in described.items() if k[1] == "binary"} == {
        ("lightgbm", "binary"): ("0 2 * * *", 0.25, "auc", 0.80),
        ("lstm", "binary"): ("0 3 * * *", 0.30, "auc", 0.75),
        ("transformer", "binary"): ("0 4 * * *", 0.30, "auc", 0.75),
        ("ensemble", "binary"): ("0 5 * * *", 0.20, "auc", 0.85),
    }
    assert described[("lightgbm", "multiclass")] == ("0 2 * * *", 0.25, "auc_ovr", 0.80)
    assert described[("lstm", "regression")] == ("0 3 * * *", 0.30, "r2", 0.0)
    assert len(rows) == 12 and result.configs_added[:4] == [
        "lightgbm",
        "lstm",
        "transformer",
        "ensemble",
    ]
    assert "transformer/regression" in result.configs_added
    engine.dispose()


def test_an_older_database_keeps_its_rows_as_binary_ones_after_the_task_migration(
    empty_db_url: str,
) -> None:
    """0009 keys the defaults by (model type, task): an edited config row, a job and a version
    of a database made at 0008 become binary ones, and `db init` adds the other tasks' rows."""
    from alembic import command

    engine = make_engine(empty_db_url)
    with engine.begin() as conn:
        config = alembic_config()
        config.attributes["connection"] = conn
        command.upgrade(config, "0008_registry_identity")
        conn.exec_driver_sql(
            "INSERT INTO auto_retraining_config (model_type, schedule, drift_threshold, "
            "performance_threshold, strategy, hyperparameters, created_at, updated_at) VALUES "
            "('lightgbm', '0 1 * * *', 0.2, 0.7, 'full', '{}', '2026-01-01', '2026-01-01')"
        )
        conn.exec_driver_sql(
            "INSERT INTO model_version_management (model_name, version, model_type, status, "
            "artifact_path, sha256, size_bytes, metrics, hyperparameters, data_fingerprint, "
            "created_at) VALUES ('m', 1, 'lightgbm', 'active', '/a', 'x', 1, '{}', '{}', '{}', "
            "'2026-01-01')"
        )
    result = init_database(engine, NOW)
    assert result.revision_before == "0008_registry_identity"
    assert "lightgbm" not in result.configs_added and "lightgbm/regression" in result.configs_added
    with Session(engine) as session:
        row = session.scalars(
            select(AutoRetrainingConfig).where(
                AutoRetrainingConfig.model_type == "lightgbm",
                AutoRetrainingConfig.task == "binary",
            )
        ).one()
        version = session.scalars(select(ModelVersionManagement)).one()
    assert (row.schedule, row.performance_metric, row.performance_threshold) == (
        "0 1 * * *",
        "auc",
        0.7,
    )
    assert version.task == "binary"
    engine.dispose()


def test_init_twice_changes_nothing(db_url: str) -> None:
    engine = make_engine(db_url)
    with Session(engine) as session:
        session.execute(
            text(
                "UPDATE auto_retraining_config SET drift_threshold = 0.5 "
                "WHERE model_type = 'lstm' AND task = 'binary'"
            )
        )
        session.commit()
    result = init_database(engine, NOW)
    assert result.configs_added == [] and result.revision_before == SCHEMA_REVISION
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(AutoRetrainingConfig)) == 12
        edited = session.scalar(
            select(AutoRetrainingConfig.drift_threshold).where(
                AutoRetrainingConfig.model_type == "lstm", AutoRetrainingConfig.task == "binary"
            )
        )
    assert edited == 0.5  # an operator's edit survives
    engine.dispose()


def test_migrations_match_the_models(db_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    engine = make_engine(db_url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    engine.dispose()


def test_schema_revision_constant_is_the_alembic_head() -> None:
    from alembic.script import ScriptDirectory

    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == SCHEMA_REVISION


def test_schemas_sql_is_rendered_from_the_migrations() -> None:
    assert SCHEMAS_SQL.read_text() == render_postgresql_ddl(), (
        "schemas.sql is stale: regenerate with `retrain-cli db sql > schemas.sql`"
    )


def _describe(engine: Engine) -> dict[str, Any]:
    inspector = inspect(engine)
    described = {}
    for table in sorted(inspector.get_table_names()):
        described[table] = {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"], str(c.get("default")))
                for c in inspector.get_columns(table)
            ],
            "pk": inspector.get_pk_constraint(table)["constrained_columns"],
            "indexes": sorted(
                (
                    i["name"],
                    tuple(i["column_names"]),
                    i["unique"],
                    str(i.get("dialect_options", {}).get("postgresql_where")),
                )
                for i in inspector.get_indexes(table)
            ),
            "unique": sorted(
                (u["name"], tuple(u["column_names"]))
                for u in inspector.get_unique_constraints(table)
            ),
            "fks": sorted(
                (
                    f["name"],
                    tuple(f["constrained_columns"]),
                    f["referred_table"],
                    str(f.get("options")),
                )
                for f in inspector.get_foreign_keys(table)
            ),
            "checks": sorted(
                (c["name"], c["sqltext"]) for c in inspector.get_check_constraints(table)
            ),
        }
    return described


def test_schemas_sql_yields_the_same_schema_as_db_init(
    new_pg_database: Callable[[], str],
) -> None:
    by_init = make_engine(new_pg_database())
    init_database(by_init, NOW)
    by_sql = create_engine(new_pg_database())
    with by_sql.begin() as conn:
        conn.exec_driver_sql(SCHEMAS_SQL.read_text())
    try:
        expected = _describe(by_init)
        assert set(expected) == {*TABLE_NAMES, "alembic_version"}
        assert _describe(by_sql) == expected
    finally:
        by_init.dispose()
        by_sql.dispose()


def _version(model: str, number: int, status: str) -> ModelVersionManagement:
    return ModelVersionManagement(
        model_name=model,
        version=number,
        model_type="lightgbm",
        status=status,
        artifact_path="/a",
        sha256="0" * 64,
        size_bytes=1,
        metrics={},
        hyperparameters={},
        data_fingerprint={},
        created_at=NOW,
    )


def test_database_allows_one_active_version_per_model(session: SessionFactory) -> None:
    with session() as s:
        s.add_all([_version("fraud", 1, "active"), _version("other", 1, "active")])
    with pytest.raises(IntegrityError), session() as s:
        s.add(_version("fraud", 2, "active"))
    with session() as s:
        s.add(_version("fraud", 2, "registered"))  # many non-active versions are fine


def test_database_refuses_a_duplicate_version_number(session: SessionFactory) -> None:
    with session() as s:
        s.add(_version("fraud", 1, "registered"))
    with pytest.raises(IntegrityError), session() as s:
        s.add(_version("fraud", 1, "retired"))


def test_foreign_keys_are_enforced(session: SessionFactory) -> None:
    job = AutoRetrainingJob(
        name="j",
        model_name="m",
        model_type="xgboost",
        enabled=True,
        timezone="UTC",
        priority=0,
        primary_metric="auc",
        triggers=[],
        spec={},
        created_at=NOW,
        updated_at=NOW,
    )
    with pytest.raises(IntegrityError), session() as s:
        s.add(job)


def test_a_schema_from_a_newer_release_says_so_instead_of_failing_oddly(db_url: str) -> None:
    from retrain_cli.core.errors import DatabaseError
    from tests.conftest import Cli

    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099_from_the_future'"))
    for command in (["jobs", "list"], ["db", "init"]):
        result = Cli(db_url)(*command)
        assert result.exit_code == 1
        assert "revision 0099_from_the_future, which retrain-cli" in result.stderr
        assert "a newer retrain-cli upgraded it" in result.stderr
    with pytest.raises(DatabaseError, match="newer retrain-cli"):
        init_database(engine, NOW)
    engine.dispose()


def test_the_row_kinds_migration_backfills_each_kind_from_the_metric_and_flags(
    empty_db_url: str,
) -> None:
    from alembic import command

    engine = make_engine(empty_db_url)
    rows = [  # metric, estimated, is_primary, window start (day), checked day -> kind
        ("auc", False, True, 1, 1, "checked"),
        ("f1", False, False, 1, 1, "checked"),
        ("auc", True, True, 2, 2, "estimated"),
        ("calibration_brier", True, False, 2, 2, "calibration"),
        ("auc", False, False, 2, 3, "realized"),  # labelled later, in the estimate's window
        ("change_point:adwin", False, False, 3, 3, "change_point"),
        ("rollout:auc", False, False, 3, 3, "rollout"),
    ]
    with engine.begin() as conn:
        config = alembic_config()
        config.attributes["connection"] = conn
        command.upgrade(config, "0006_rollouts")
        for i, (metric, estimated, primary, start, at, _) in enumerate(rows):
            conn.execute(
                text(
                    "INSERT INTO model_performance_tracking (check_id, model_name, checked_at,"
                    " window_start, window_end, metric, is_primary, estimated, n_samples,"
                    " n_dropped) VALUES (:c, 'm', :at, :w, :w, :metric, :p, :e, 10, 0)"
                ),
                {
                    "c": f"c{i}",
                    "at": NOW.replace(day=at),
                    "w": NOW.replace(day=start),
                    "metric": metric,
                    "p": primary,
                    "e": estimated,
                },
            )
    init_database(engine, NOW)
    with engine.connect() as conn:
        kinds = conn.execute(
            text("SELECT kind FROM model_performance_tracking ORDER BY id")
        ).scalars()
        assert list(kinds) == [kind for *_, kind in rows]
    engine.dispose()
