"""Estimated performance end to end from a job file, on both backends: `perf estimate`, `perf
check` estimating the unlabelled rows and later realizing them, `stats`' estimation error, and
`jobs due` retraining on an estimated degradation."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from retrain_cli.db.models import ModelPerformanceTracking
from retrain_cli.statistics import performance
from tests.conftest import Cli
from tests.helpers import write_job

pytest.importorskip("sklearn")

SessionFactory = Callable[[], AbstractContextManager[Session]]
NOW = "2026-06-01T00:00:00Z"
LABELLED = 3000  # the older rows, whose outcomes arrived
WINDOW = 2000  # the newest rows, still unlabelled


def predictions(*, shift: float = 0.0, seed: int = 0) -> pd.DataFrame:
    """Hourly scored rows of a calibrated model; the newest WINDOW rows' feature moved by
    `shift` (the scores change, the score-to-outcome relation does not). Every label is kept
    in `y_all`; `y` hides the newest WINDOW."""
    rng = np.random.default_rng(seed)
    n = LABELLED + WINDOW
    x = rng.normal(0.0, 1.0, n)
    x[LABELLED:] += shift
    p = 1 / (1 + np.exp(-(2 * x - 1)))
    y = (rng.random(n) < p).astype(float)
    frame = pd.DataFrame(
        {"ts": pd.date_range("2026-03-01", periods=n, freq="h", tz="UTC"), "score": p, "y_all": y}
    )
    frame["y"] = frame["y_all"].where(frame.index < LABELLED)
    return frame


def setup_job(
    cli: Cli, folder: Path, frame: pd.DataFrame, threshold: float = 0.7, **performance: Any
) -> None:
    frame.drop(columns="y_all").to_parquet(folder / "preds.parquet")
    job = write_job(
        folder,
        "j1",
        data={"train": "t.parquet", "predictions": "preds.parquet"},
        thresholds={"performance": threshold},
        performance={"estimate": True, **performance},
    )
    result = cli("jobs", "apply", "-f", str(job))
    assert result.exit_code == 0, result.output


def run(cli: Cli, *args: str) -> tuple[int, dict[str, Any]]:
    result = cli(*args, "--json")
    return result.exit_code, json.loads(result.stdout) if result.stdout.strip() else {}


def test_perf_estimate_records_cbpe_metrics_close_to_the_hidden_realized_ones(
    cli: Cli, tmp_path: Path, session: SessionFactory
) -> None:
    frame = predictions(shift=0.8)
    setup_job(cli, tmp_path, frame)
    code, document = run(cli, "perf", "estimate", "j1", "--now", NOW)
    assert code == 0, document
    (result,) = document["results"]
    estimate = result["estimate"]
    hidden = frame.iloc[LABELLED:]
    truth = performance.evaluate(hidden["y_all"].to_numpy(), hidden["score"].to_numpy())
    for metric in ("auc", "precision", "recall", "f1", "accuracy"):
        assert estimate["metrics"][metric] == pytest.approx(truth.values[metric], abs=0.03)
    assert estimate["n_samples"] == WINDOW and estimate["n_reference"] == LABELLED
    assert 0 < estimate["brier"] < 0.25
    with session() as s:
        stored = {r.metric: r for r in s.scalars(select(ModelPerformanceTracking))}
    assert set(stored) == {"auc", "precision", "recall", "f1", "accuracy", "calibration_brier"}
    assert all(r.estimated for r in stored.values())
    assert stored["auc"].is_primary and stored["auc"].threshold == 0.7
    assert stored["calibration_brier"].value == pytest.approx(estimate["brier"])
    assert stored["auc"].window_start is not None
    assert stored["auc"].window_start.isoformat() == hidden["ts"].min().isoformat()


def test_labels_arriving_later_are_recorded_next_to_the_estimate_and_stats_show_the_error(
    cli: Cli, tmp_path: Path, session: SessionFactory
) -> None:
    frame = predictions(shift=0.5, seed=1)
    setup_job(cli, tmp_path, frame)
    code, first = run(cli, "perf", "check", "j1", "--now", NOW)
    assert code == 0, first
    estimated = first["results"][0]["estimate"]["metrics"]["auc"]
    assert first["results"][0]["realized"] == []
    # the outcomes arrive: the same file, every label in place
    frame.assign(y=frame["y_all"]).drop(columns="y_all").to_parquet(tmp_path / "preds.parquet")
    code, second = run(cli, "perf", "check", "j1", "--now", "2026-06-02T00:00:00Z")
    assert code == 0, second
    realized = {r["metric"]: r for r in second["results"][0]["realized"]}
    hidden = frame.iloc[LABELLED:]
    truth = performance.auc(hidden["y_all"].to_numpy(), hidden["score"].to_numpy())
    assert realized["auc"]["realized"] == pytest.approx(truth, abs=1e-12)
    assert realized["auc"]["estimated"] == pytest.approx(estimated)
    assert realized["auc"]["n_samples"] == WINDOW
    # recorded once: a third check finds nothing left to realize
    code, third = run(cli, "perf", "check", "j1", "--now", "2026-06-03T00:00:00Z")
    assert third["results"][0]["realized"] == []
    code, stats = run(cli, "stats", "--now", "2026-06-03T00:00:00Z", "--since", "30d")
    (job,) = stats["jobs"]
    assert job["estimation_error"] == pytest.approx(abs(estimated - truth), abs=1e-12)
    assert job["estimates_realized"] == 1


def test_an_estimated_degradation_triggers_a_retrain_only_when_the_job_allows_it(
    cli: Cli, tmp_path: Path
) -> None:
    frame = predictions(seed=2)
    setup_job(cli, tmp_path, frame, threshold=0.95)  # an AUC of about 0.8 is too low
    code, document = run(cli, "perf", "estimate", "j1", "--now", NOW)
    assert code == 3, document  # a finding
    assert document["results"][0]["estimate"]["degraded"] is True
    assert performance_reasons(cli) == []
    setup_job(cli, tmp_path, frame, threshold=0.95, estimated_triggers=True)
    (detail,) = performance_reasons(cli)
    assert detail.startswith("estimated auc 0.")
    assert detail.endswith("degraded at 2026-06-01T00:00:00+00:00")


def performance_reasons(cli: Cli) -> list[str]:
    """The details of the performance reasons `jobs due` gives for j1."""
    _, due = run(cli, "jobs", "due", "--now", "2026-06-01T00:05:00Z")
    return [r["detail"] for d in due["due"] for r in d["reasons"] if r["trigger"] == "performance"]


def test_perf_estimate_all_takes_the_jobs_that_estimate(cli: Cli, tmp_path: Path) -> None:
    setup_job(cli, tmp_path, predictions(seed=6))
    other = write_job(
        tmp_path, "plain", data={"train": "t.parquet", "predictions": "preds.parquet"}
    )
    assert cli("jobs", "apply", "-f", str(other)).exit_code == 0
    code, document = run(cli, "perf", "estimate", "--all", "--now", NOW)
    assert code == 0, document
    assert [r["job"] for r in document["results"]] == ["j1"]


@pytest.mark.parametrize(
    ("labelled", "reason"),
    [("one_class", "reference_single_class"), ("few", "insufficient_samples")],
)
def test_an_estimate_that_cannot_be_made_is_null_with_its_reason(
    cli: Cli, tmp_path: Path, session: SessionFactory, labelled: str, reason: str
) -> None:
    frame = predictions(seed=3)
    if labelled == "one_class":
        frame.loc[: LABELLED - 1, "y"] = 0.0
    else:
        frame.loc[10 : LABELLED - 1, "y"] = np.nan
    setup_job(cli, tmp_path, frame)
    code, document = run(cli, "perf", "estimate", "j1", "--now", NOW)
    assert code == 0, document
    estimate = document["results"][0]["estimate"]
    assert set(estimate["metrics"].values()) == {None}
    assert set(estimate["reasons"].values()) == {reason}
    assert estimate["degraded"] is None and estimate["brier"] is None
    with session() as s:
        brier = s.scalars(
            select(ModelPerformanceTracking).where(
                ModelPerformanceTracking.metric == "calibration_brier"
            )
        ).one()
    assert brier.value is None and brier.reason == "not_calibrated"


def test_a_window_too_small_to_estimate_is_null_not_zero(cli: Cli, tmp_path: Path) -> None:
    frame = predictions(seed=4)
    frame.loc[LABELLED + 10 :, "score"] = np.nan  # ten unlabelled rows with a score remain
    setup_job(cli, tmp_path, frame)
    _, document = run(cli, "perf", "estimate", "j1", "--now", NOW)
    estimate = document["results"][0]["estimate"]
    assert estimate["n_samples"] == 10
    assert set(estimate["reasons"].values()) == {"insufficient_samples"}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"performance": {"estimated_triggers": True}},
            "performance.estimated_triggers needs performance.estimate: true",
        ),
        (
            {"performance": {"estimate": True}, "return_column": "ret"},
            "performance.estimate: sharpe cannot be estimated without labels",
        ),
    ],
)
def test_job_files_that_ask_for_an_impossible_estimate_are_refused(
    cli: Cli, tmp_path: Path, fields: dict[str, Any], message: str
) -> None:
    result = cli("jobs", "apply", "-f", str(write_job(tmp_path, "j1", **fields)))
    assert result.exit_code == 1
    assert message in result.stderr


def test_without_scikit_learn_the_estimate_says_how_to_install_it(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, session: SessionFactory
) -> None:
    setup_job(cli, tmp_path, predictions(seed=5))
    monkeypatch.setitem(sys.modules, "sklearn.isotonic", None)  # what an install without it sees
    result = cli("perf", "estimate", "j1")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "Error: j1: estimated performance calibrates with scikit-learn: "
        "pip install 'retrain-cli[monitoring]'"
    )
    with session() as s:
        assert s.scalars(select(ModelPerformanceTracking)).first() is None
