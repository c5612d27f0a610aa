import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from retrain_cli.db.models import ModelPerformanceTracking, ModelVersionManagement
from tests.conftest import Cli
from tests.helpers import write_job

SessionFactory = Callable[[], AbstractContextManager[Session]]


def predictions(n: int = 300, *, quality: float = 2.0, seed: int = 0) -> pd.DataFrame:
    """Scored rows whose AUC grows with `quality`, with per-period returns."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    score = 1 / (1 + np.exp(-(quality * (y - 0.5) + rng.normal(0, 1, n))))
    ret = np.where((score > 0.5) == (y == 1), 1, -1) * np.abs(rng.normal(0.002, 0.01, n))
    ts = pd.date_range("2026-05-01", periods=n, freq="h", tz="UTC")
    return pd.DataFrame({"ts": ts, "y": y, "score": score, "ret": ret})


def setup_job(
    cli: Cli, folder: Path, frame: pd.DataFrame, name: str = "j1", **fields: object
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(folder / "preds.parquet")
    fields.setdefault("data", {"train": "t.parquet", "predictions": "preds.parquet"})
    assert cli("jobs", "apply", "-f", str(write_job(folder, name, **fields))).exit_code == 0


def rows(session: SessionFactory) -> list[ModelPerformanceTracking]:
    with session() as s:
        return list(
            s.scalars(select(ModelPerformanceTracking).order_by(ModelPerformanceTracking.id))
        )


def check(cli: Cli, *args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    result = cli("perf", "check", *args, "--json")
    return result.exit_code, json.loads(result.stdout) if result.stdout else {}


def test_healthy_model_exits_0_with_one_row_per_metric(
    cli: Cli, tmp_path: Path, session: SessionFactory
) -> None:
    setup_job(cli, tmp_path, predictions(quality=4.0))
    code, document = check(cli, "j1", "--now", "2026-06-01T00:00:00Z")
    assert code == 0
    (result,) = document["results"]
    assert result["degraded"] is False and result["primary_metric"] == "auc"
    assert result["metrics"]["auc"] > 0.9 and result["version"] is None
    recorded = rows(session)
    assert [r.metric for r in recorded] == [
        "auc",
        "precision",
        "recall",
        "f1",
        "log_loss",
        "accuracy",
    ]
    primary = [r for r in recorded if r.is_primary]
    assert [(p.metric, p.threshold, p.degraded) for p in primary] == [("auc", 0.80, False)]
    assert all(r.degraded is None and r.threshold is None for r in recorded if not r.is_primary)
    assert recorded[0].window_start == datetime(2026, 5, 1, tzinfo=UTC)
    assert recorded[0].checked_at == datetime(2026, 6, 1, tzinfo=UTC)


def test_below_threshold_exits_3(cli: Cli, tmp_path: Path) -> None:
    setup_job(cli, tmp_path, predictions(quality=0.5))
    code, document = check(cli, "j1")
    assert code == 3
    assert document["results"][0]["degraded"] is True


def test_relative_drop_from_the_active_versions_hold_out(
    cli: Cli, tmp_path: Path, session: SessionFactory
) -> None:
    setup_job(cli, tmp_path, predictions(quality=1.5), thresholds={"performance": 0.5})
    with session() as s:
        s.add(
            ModelVersionManagement(
                model_name="j1-model",
                version=3,
                model_type="lightgbm",
                status="active",
                artifact_path="/x",
                sha256="0" * 64,
                size_bytes=1,
                metrics={"auc": 0.999},
                hyperparameters={},
                data_fingerprint={},
                created_at=datetime.now(UTC),
            )
        )
    code, document = check(cli, "j1")
    (result,) = document["results"]
    auc = result["metrics"]["auc"]
    assert (auc - 0.999) / 0.999 < -0.10  # the data is worse than the hold-out by > 10%
    assert (code, result["degraded"], result["version"]) == (3, True, 3)
    primary = next(r for r in rows(session) if r.is_primary)
    assert (primary.baseline, primary.version) == (0.999, 3)


def test_rows_with_missing_values_are_dropped_and_counted(cli: Cli, tmp_path: Path) -> None:
    frame = predictions(quality=4.0)
    frame.loc[:9, "score"] = np.nan
    frame.loc[20:24, "y"] = np.nan
    setup_job(cli, tmp_path, frame)
    _, document = check(cli, "j1")
    assert (document["results"][0]["n_samples"], document["results"][0]["n_dropped"]) == (285, 15)


def test_one_class_makes_auc_unknown_not_degraded(
    cli: Cli, tmp_path: Path, session: SessionFactory
) -> None:
    setup_job(cli, tmp_path, predictions().assign(y=1))
    code, document = check(cli, "j1")
    (result,) = document["results"]
    assert code == 0
    assert result["degraded"] is None and result["metrics"]["auc"] is None
    assert result["reasons"]["auc"] == "single_class"
    auc_row = next(r for r in rows(session) if r.metric == "auc")
    assert (auc_row.value, auc_row.reason, auc_row.degraded) == (None, "single_class", None)


def test_trading_job_is_judged_on_sharpe(cli: Cli, tmp_path: Path) -> None:
    setup_job(
        cli,
        tmp_path,
        predictions(quality=3.0),
        return_column="ret",
        thresholds={"performance": 1.0},
        performance={"periods_per_year": 8760},
    )
    code, document = check(cli, "j1")
    (result,) = document["results"]
    assert result["primary_metric"] == "sharpe"
    assert set(result["metrics"]) >= {
        "sharpe",
        "sortino",
        "max_drawdown",
        "win_rate",
        "total_return",
    }
    assert (code, result["degraded"]) == (0, False)


def test_window_keeps_only_the_newest_rows(cli: Cli, tmp_path: Path) -> None:
    setup_job(cli, tmp_path, predictions(n=24 * 10, quality=4.0))
    _, document = check(cli, "j1", "--window", "2d")
    assert document["results"][0]["n_samples"] == 48


def test_window_bounds_of_text_timestamps_are_by_time_not_by_text(
    cli: Cli, tmp_path: Path, session: SessionFactory
) -> None:
    """`2026-11-9T8:00:00` parses but is not zero-padded: as text it sorts after
    `2026-11-10T...`. The recorded window is the parsed first and last time."""
    frame = predictions(n=48, quality=4.0)
    stamps = pd.date_range("2026-11-09T00:00", periods=48, freq="h")
    frame["ts"] = [f"{t.year}-{t.month}-{t.day}T{t.hour}:00:00" for t in stamps]
    setup_job(cli, tmp_path, frame, performance={"min_samples": 10})
    code, document = check(cli, "j1")
    assert code == 0, document
    (primary,) = [r for r in rows(session) if r.is_primary]
    assert primary.window_start == datetime(2026, 11, 9, 0, tzinfo=UTC)
    assert primary.window_end == datetime(2026, 11, 10, 23, tzinfo=UTC)


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (predictions().drop(columns=["score"]), "predictions have no column 'score'"),
        (predictions().assign(y=2), "column 'y' must hold 0/1 outcomes"),
        (predictions().assign(score="high"), "column 'score' must be numeric"),
        (predictions().head(0), "is empty"),
        (
            predictions().assign(score=lambda f: f.score + 1.0),  # shifted, as logits often are
            "column 'score' has 300 scores outside [0, 1]",
        ),
    ],
    ids=["missing column", "labels not 0/1", "text scores", "empty", "logits"],
)
def test_bad_predictions_exit_1_and_write_nothing(
    cli: Cli, tmp_path: Path, session: SessionFactory, frame: pd.DataFrame, message: str
) -> None:
    setup_job(cli, tmp_path, frame)
    result = cli("perf", "check", "j1")
    assert result.exit_code == 1
    assert message in result.stderr and result.stderr.count("\n") == 1
    assert rows(session) == []


def test_all_reports_a_broken_job_and_checks_the_rest(
    cli: Cli, tmp_path: Path, session: SessionFactory
) -> None:
    setup_job(cli, tmp_path / "a", predictions(quality=4.0), name="good")
    setup_job(cli, tmp_path / "b", predictions(), name="broken")
    (tmp_path / "b" / "preds.parquet").unlink()
    setup_job(cli, tmp_path / "c", predictions(), name="nopreds", data={"train": "t.parquet"})
    code, document = check(cli, "--all")
    assert code == 1
    assert [r["job"] for r in document["results"]] == ["good"]
    assert [e["job"] for e in document["errors"]] == ["broken"]
    assert {r.metric for r in rows(session)} >= {"auc"} and len(rows(session)) == 6


def test_ad_hoc_file_with_returns(cli: Cli, tmp_path: Path, session: SessionFactory) -> None:
    path = tmp_path / "p.csv"
    predictions(quality=4.0).rename(
        columns={"y": "y_true", "score": "y_score", "ret": "return"}
    ).to_csv(path, index=False)
    code, document = check(
        cli,
        "--model",
        "m",
        "--predictions",
        str(path),
        "--primary-metric",
        "sharpe",
        "--threshold",
        "0.5",
        "--periods-per-year",
        "8760",
    )
    assert code == 0
    (result,) = document["results"]
    assert (result["job"], result["primary_metric"]) == (None, "sharpe")
    assert {r.job_id for r in rows(session)} == {None}


def test_all_with_no_job_to_check_says_so(cli: Cli) -> None:
    for args, said in (
        (("perf", "check", "--all"), "no enabled job has data.predictions to check"),
        (("drift", "check", "--all"), "no enabled job has data.reference and data.current"),
    ):
        result = cli(*args)
        assert result.exit_code == 0 and said in result.stdout, result.output
        assert cli(*args, "-q").stdout == ""
