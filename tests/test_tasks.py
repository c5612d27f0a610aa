"""Regression and multiclass jobs through the whole cycle, on both backends: `retrain` (a real
LightGBM model of the task), `perf check`, `perf estimate` (DLE, multiclass CBPE), a canary
rollout judged on the task's metric, and `report`; then every other family of each task."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.conftest import Cli
from tests.helpers import write_job

CLASSES = ["low", "medium", "high", "critical"]
TICK = timedelta(hours=6)
ROWS_PER_TICK = 1200
CANARY = {
    "mode": "canary",
    "steps": [{"weight": 0.2, "bake": "6h"}],
    "analysis": {"max_drop": 0.05, "min_samples": 200, "resamples": 300},
    "failure_limit": 2,
}


def features(n: int, seed: int, start: str = "2026-01-01") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "ts": pd.date_range(start, periods=n, freq="h", tz="UTC"),
            "f0": rng.normal(0, 1, n),
            "f1": rng.normal(0, 1, n),
            "colour": rng.choice(["red", "green", "blue"], n),
        }
    )


def demand(frame: pd.DataFrame, seed: int) -> np.ndarray:
    """Units sold: positive, so that every error metric (mape included) is defined."""
    rng = np.random.default_rng(seed)
    red = np.where(frame["colour"] == "red", 4.0, 0.0)
    signal = 8 * frame["f0"].to_numpy() - 5 * frame["f1"].to_numpy() + red
    return 50 + signal + rng.normal(0, 2, len(frame))


def grade(frame: pd.DataFrame, seed: int) -> np.ndarray:
    """A risk grade: the latent risk's quartile, blurred by noise."""
    rng = np.random.default_rng(seed)
    latent = 1.5 * frame["f0"].to_numpy() - frame["f1"].to_numpy() + rng.normal(0, 0.5, len(frame))
    cut = np.digitize(latent, [-1.2, 0.0, 1.2])
    return np.array(CLASSES)[cut]


LIGHTGBM = {"num_boost_round": 40, "num_threads": 1}
PREDICTED = {"train": "train.parquet", "predictions": "predictions.parquet"}


def regression_job(folder: Path, **fields: Any) -> Path:
    """A LightGBM job forecasting units, judged on RMSE; `fields` override its own."""
    frame = features(800, seed=1)
    frame["units"] = demand(frame, seed=2)
    frame.to_parquet(folder / "train.parquet")
    job = {"primary_metric": "rmse", "thresholds": {"performance": 5.0}, **fields}
    return write_job(
        folder,
        task="regression",
        target="units",
        **{"hyperparameters": LIGHTGBM, "data": PREDICTED, **job},
    )


def multiclass_job(folder: Path, **fields: Any) -> Path:
    """A LightGBM job grading risk in four classes; `fields` override its own."""
    frame = features(1200, seed=1)
    frame["grade"] = grade(frame, seed=2)
    frame.to_parquet(folder / "train.parquet")
    return write_job(
        folder,
        task="multiclass",
        target="grade",
        classes=CLASSES,
        **{"hyperparameters": LIGHTGBM, "data": PREDICTED, **fields},
    )


class Served:
    """A serving layer for either task: each row goes to a version by the serving document's
    weights and is predicted with that version's noise (the lower, the better the version);
    outcomes of the newest rows have not arrived."""

    def __init__(self, home: Path, folder: Path, task: str, noise: dict[int, float]) -> None:
        self.document = home / "serving" / "j1-model.json"
        self.path = folder / "predictions.parquet"
        self.task, self.noise = task, noise
        self.rng = np.random.default_rng(5)

    def weights(self) -> dict[int, float]:
        if not self.document.exists():  # a job without a rollout policy: its one version
            return {1: 1.0}
        document = json.loads(self.document.read_text())
        return {v["version"]: v["weight"] for v in document["versions"]}

    def serve(self, start: datetime, rows: int = ROWS_PER_TICK, label_delay: float = 0.0) -> None:
        weights = self.weights()
        versions = list(weights)
        frame = features(rows, seed=int(self.rng.integers(1_000_000)), start=start.isoformat())
        chosen = self.rng.choice(versions, size=rows, p=[weights[v] for v in versions])
        noise = np.array([self.noise[v] for v in chosen])
        if self.task == "regression":
            frame["units"] = demand(frame, seed=int(self.rng.integers(1_000_000)))
            frame["score"] = frame["units"] + self.rng.normal(0, 1, rows) * noise
        else:
            frame["grade"] = grade(frame, seed=int(self.rng.integers(1_000_000)))
            truth = pd.Categorical(frame["grade"], categories=CLASSES).codes
            logits = (
                2.0 * np.eye(len(CLASSES))[truth]
                + self.rng.normal(0, 1, (rows, 4)) * noise[:, None]
            )
            proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
            for k, name in enumerate(CLASSES):
                frame[f"score_{name}"] = proba[:, k]
        frame["model_version"] = chosen.astype(np.int64)
        target = "units" if self.task == "regression" else "grade"
        if label_delay:
            frame[target] = frame[target].astype(object)
            frame.loc[frame.index >= rows * (1 - label_delay), target] = None
            if self.task == "regression":
                frame[target] = frame[target].astype(float)
        if self.path.exists():
            frame = pd.concat([pd.read_parquet(self.path), frame], ignore_index=True)
        frame.to_parquet(self.path)


def ok(cli: Cli, *args: str) -> dict[str, Any]:
    result = cli(*args, "--json")
    assert result.exit_code in (0, 3), result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


@pytest.mark.slow
@pytest.mark.parametrize(
    ("task", "make", "metric", "estimated"),
    [
        ("regression", regression_job, "rmse", {"rmse", "mae"}),
        ("multiclass", multiclass_job, "auc_ovr", {"accuracy", "f1_macro", "auc_ovr"}),
    ],
)
def test_a_lightgbm_job_of_each_task_goes_through_retrain_check_estimate_canary_and_report(
    cli: Cli, tmp_path: Path, home: Path, task: str, make: Any, metric: str, estimated: set[str]
) -> None:
    path = make(
        tmp_path,
        strategy="full",
        gate={"allow_ties": True},
        rollout=CANARY,
        performance={"estimate": True},
    )
    assert cli("jobs", "apply", "-f", str(path)).exit_code == 0
    first = ok(cli, "retrain", "j1")
    assert first["status"] == "succeeded" and first["gate"]["decision"] == "promote"
    listed = ok(cli, "versions", "list", "j1-model")
    holdout = listed["versions"][0]["metrics"]
    assert holdout[metric] is not None and holdout["n_scored"] == holdout["n_holdout"]
    if task == "regression":
        assert {"rmse", "mae", "mape", "r2", "median_ae"} <= set(holdout)
        assert holdout["r2"] > 0.8 and holdout["rmse"] < 5.0
    else:
        assert {"accuracy", "f1_macro", "log_loss", "auc_ovr"} <= set(holdout)
        assert holdout["auc_ovr"] > 0.8
    second = ok(cli, "retrain", "j1", "--force")
    assert second["gate"]["decision"] == "candidate", second["gate"]

    layer = Served(home, tmp_path, task, {1: 3.0 if task == "regression" else 1.5, 2: 1.0})
    assert layer.weights() == {1: 0.8, 2: 0.2}
    now = datetime.now(UTC)
    for _ in range(6):
        now += TICK
        layer.serve(now - TICK)
        check = cli("perf", "check", "j1", "--now", now.isoformat(), "-q")
        assert check.exit_code in (0, 3), check.stderr
        if layer.weights() == {2: 1.0}:
            break
    assert layer.weights() == {2: 1.0}, "the better candidate was not promoted"
    shown = ok(cli, "perf", "check", "j1", "--now", now.isoformat())
    (result,) = shown["results"]
    assert result["primary_metric"] == metric and result["metrics"][metric] is not None

    layer.serve(now, label_delay=0.5)
    estimate = ok(cli, "perf", "estimate", "j1", "--now", (now + TICK).isoformat())
    (guess,) = estimate["results"]
    values = guess["estimate"]["metrics"]
    assert estimated <= {name for name, value in values.items() if value is not None}, guess
    realized = result["metrics"]
    if task == "regression":  # the champion's error is about 1 unit on every window
        assert abs(values["rmse"] - realized["rmse"]) < 0.3 * realized["rmse"]
    else:
        assert abs(values["accuracy"] - realized["accuracy"]) < 0.08

    site = tmp_path / "site"
    report = cli("report", "--out", str(site))
    assert report.exit_code == 0, report.stderr
    pages = " ".join(p.read_text() for p in site.rglob("*.html"))
    assert metric in pages


@pytest.mark.slow
@pytest.mark.parametrize("family", ["lstm", "transformer", "ensemble"])
def test_a_regression_job_of_every_other_family_trains_and_is_checked(
    cli: Cli, tmp_path: Path, home: Path, family: str
) -> None:
    torch_params = {"sequence_length": 4, "max_epochs": 8, "hidden_size": 8, "d_model": 8}
    own = {"members": ["lightgbm", "lstm"]} if family == "ensemble" else {"loss": "huber"}
    path = regression_job(
        tmp_path,
        type=family,
        thresholds={"performance": 30.0},
        hyperparameters={**torch_params, **own, "num_threads": 1},
    )
    assert cli("jobs", "apply", "-f", str(path)).exit_code == 0
    run = ok(cli, "retrain", "j1")
    assert run["status"] == "succeeded", run
    (version,) = ok(cli, "versions", "list", "j1-model")["versions"]
    assert version["metrics"]["rmse"] is not None and version["metrics"]["r2"] > 0.0
    if family != "ensemble":  # the artifact alone reproduces the hold-out's predictions
        assert holdout_rmse_from_the_artifact(tmp_path, Path(version["artifact"]), family) == (
            pytest.approx(version["metrics"]["rmse"], rel=1e-9)
        )
    Served(home, tmp_path, "regression", {1: 1.0}).serve(datetime(2026, 3, 1, tzinfo=UTC), 300)
    (checked,) = ok(cli, "perf", "check", "j1")["results"]
    assert checked["metrics"]["rmse"] < 2.0


def holdout_rmse_from_the_artifact(folder: Path, manifest: Path, family: str) -> float:
    """The RMSE of the newest 20% of the training rows (the hold-out), predicted by the model
    loaded from its verified files in a fresh trainer."""
    from retrain_cli.statistics import regression
    from retrain_cli.store import artifacts
    from retrain_cli.trainers.families import load_trainer

    frame = pd.read_parquet(folder / "train.parquet")
    frame["colour"] = frame["colour"].astype("category")
    holdout = frame.iloc[-round(len(frame) * 0.2) :]
    digest = hashlib.sha256(manifest.read_bytes()).hexdigest()
    trainer = load_trainer(family, manifest.parent, artifacts.verify(manifest.parent, digest))
    predicted = trainer.predict(holdout[["f0", "f1", "colour"]])
    scored = np.isfinite(predicted)
    return regression.rmse(holdout["units"].to_numpy()[scored], predicted[scored])


@pytest.mark.slow
def test_a_multiclass_lstm_predicts_a_probability_per_class_and_is_checked(
    cli: Cli, tmp_path: Path, home: Path
) -> None:
    path = multiclass_job(
        tmp_path,
        type="lstm",
        hyperparameters={"sequence_length": 4, "max_epochs": 10, "num_threads": 1},
        thresholds={"performance": 0.6},
    )
    assert cli("jobs", "apply", "-f", str(path)).exit_code == 0
    assert ok(cli, "retrain", "j1")["gate"]["decision"] == "promote"
    (version,) = ok(cli, "versions", "list", "j1-model")["versions"]
    assert version["metrics"]["auc_ovr"] > 0.75 and version["metrics"]["log_loss"] is not None
    Served(home, tmp_path, "multiclass", {1: 1.0}).serve(datetime(2026, 3, 1, tzinfo=UTC), 300)
    (checked,) = ok(cli, "perf", "check", "j1")["results"]
    assert checked["metrics"]["accuracy"] > 0.5


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"task": "multiclass"}, "classes: a multiclass job lists its classes, at least 3"),
        ({"task": "regression", "primary_metric": "auc"}, "auc does not judge a regression job"),
        ({"task": "binary", "classes": CLASSES}, "only a multiclass job has classes"),
        (
            {"task": "multiclass", "classes": CLASSES, "class_columns": {"extreme": "p"}},
            "class_columns: extreme is not one of the classes",
        ),
        (
            {"task": "regression", "hyperparameters": {"objective": "binary"}},
            "objective: 'binary' does not fit a regression job",
        ),
        ({"task": "regression", "primary_metric": "pinball"}, "pinball judges a quantile forecast"),
        (
            {"task": "regression", "performance": {"estimate": True}, "primary_metric": "r2"},
            "r2 cannot be estimated without labels (mae, rmse can)",
        ),
    ],
)
def test_a_job_whose_task_and_fields_disagree_is_refused_with_one_line(
    cli: Cli, tmp_path: Path, fields: dict[str, Any], message: str
) -> None:
    refused = cli("jobs", "apply", "-f", str(write_job(tmp_path, **fields)))
    assert refused.exit_code == 1 and message in refused.stderr, refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1


def test_a_regression_target_that_is_not_numeric_fails_the_retrain_naming_the_column(
    cli: Cli, tmp_path: Path
) -> None:
    frame = features(100, seed=1)
    frame["units"] = np.where(frame["f0"] > 0, "many", "few")
    frame.to_parquet(tmp_path / "train.parquet")
    path = write_job(tmp_path, task="regression", target="units", data={"train": "train.parquet"})
    assert cli("jobs", "apply", "-f", str(path)).exit_code == 0
    failed = cli("retrain", "j1")
    assert failed.exit_code == 1
    assert "target 'units' must hold numbers (a regression target)" in failed.stderr
    assert cli("versions", "list", "j1-model", "--json").stdout.count('"version"') == 0


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        (
            lambda f: f.assign(score_low=f["score_low"] * 0.5),
            "columns score_low, score_medium, score_high, score_critical: ",
        ),
        (
            lambda f: f.assign(grade=np.where(f.index == 7, "extreme", f["grade"])),
            "column 'grade' holds 'extreme', which is not one of the job's classes "
            "(low, medium, high, critical)",
        ),
        (lambda f: f.drop(columns=["score_high"]), "predictions have no column 'score_high'"),
        (lambda f: f.assign(score_low=f["score_low"] * 0.5), "probabilities do not sum to 1"),
    ],
)
def test_multiclass_predictions_that_do_not_fit_the_task_are_refused_naming_the_column(
    cli: Cli, tmp_path: Path, home: Path, spoil: Any, message: str
) -> None:
    path = multiclass_job(tmp_path)
    assert cli("jobs", "apply", "-f", str(path)).exit_code == 0
    layer = Served(home, tmp_path, "multiclass", {1: 1.0})
    layer.serve(datetime(2026, 3, 1, tzinfo=UTC), 300)
    spoil(pd.read_parquet(layer.path)).to_parquet(layer.path)
    refused = cli("perf", "check", "j1")
    assert refused.exit_code == 1 and message in refused.stderr, refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1


def test_a_probability_column_per_class_is_named_by_rule_or_by_mapping() -> None:
    from retrain_cli.jobs.spec import JobSpec

    base = {
        "name": "j",
        "model": "m",
        "type": "lightgbm",
        "data": {"train": "t.parquet"},
        "target": "grade",
        "task": "multiclass",
        "classes": [1, 2, 3],
        "score_column": "p",
    }
    spec = JobSpec.model_validate(base)
    assert spec.classes == ["1", "2", "3"] and spec.primary_metric == "auc_ovr"
    assert spec.probability_columns == {"1": "p_1", "2": "p_2", "3": "p_3"}
    mapped = JobSpec.model_validate({**base, "class_columns": {2: "two"}})
    assert mapped.probability_columns == {"1": "p_1", "2": "two", "3": "p_3"}
    assert {"p_1", "two", "p_3", "grade"} <= mapped.special_columns


@pytest.mark.parametrize("task", ["regression", "multiclass"])
def test_drift_compares_each_prediction_column_and_the_target_once_labels_arrived(
    cli: Cli, tmp_path: Path, home: Path, task: str
) -> None:
    """A multiclass job's class probabilities are each a prediction column, a regression job's
    predicted value one; the target is compared when the current window has labels (as a
    category for a class, as a number for regression)."""
    make = regression_job if task == "regression" else multiclass_job
    path = make(tmp_path, data={**PREDICTED, "reference": "ref.parquet", "current": "cur.parquet"})
    assert cli("jobs", "apply", "-f", str(path)).exit_code == 0
    for name, start in (("ref", "2026-01-01"), ("cur", "2026-03-01")):
        layer = Served(home, tmp_path, task, {1: 1.0})
        layer.path = tmp_path / f"{name}.parquet"
        layer.serve(datetime.fromisoformat(start).replace(tzinfo=UTC), 600)
        frame = pd.read_parquet(layer.path).drop(columns=["model_version"])
        if name == "cur" and task == "multiclass":  # the risk grew: more critical rows
            critical = frame.index % 2 == 0
            frame.loc[critical, "grade"] = "critical"
            frame.loc[critical, [f"score_{c}" for c in CLASSES]] = [0.05, 0.05, 0.1, 0.8]
        if name == "cur" and task == "regression":
            frame["units"] += 20.0
            frame["score"] += 20.0
        frame.to_parquet(layer.path)
    checked = cli("drift", "check", "j1", "--json")
    assert checked.exit_code == 3, checked.stderr
    (result,) = json.loads(checked.stdout)["results"]
    predictions = [p["feature"] for p in result["predictions"]]
    expected = [f"score_{c}" for c in CLASSES] if task == "multiclass" else ["score"]
    assert predictions == expected and all(p["drifted"] for p in result["predictions"])
    target = "grade" if task == "multiclass" else "units"
    assert result["target"]["feature"] == target and result["target"]["drifted"] is True
    kind = "categorical" if task == "multiclass" else "numeric"
    assert result["target"]["kind"] == kind
    assert {f["feature"] for f in result["features"]} == {"f0", "f1", "colour"}


def test_multiclass_cbpe_estimates_the_realized_metrics_of_calibrated_probabilities() -> None:
    """Rows whose class is drawn from their own probabilities: calibrated by construction, so
    the estimate of an unlabelled window is close to what its labels realize."""
    from retrain_cli.performance import estimation
    from retrain_cli.statistics import multiclass

    rng = np.random.default_rng(0)

    def window(n: int, shift: float) -> tuple[np.ndarray, np.ndarray]:
        logits = rng.normal(0, 1.5, (n, 4)) + np.array([shift, 0, 0, 0])
        proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        drawn = np.array([rng.choice(4, p=row) for row in proba])
        return drawn.astype(np.float64), proba

    calibration = estimation.calibrate_classes(*window(6000, 0.0), min_samples=30)
    for shift in (0.0, 1.5):
        labels, proba = window(4000, shift)
        found = estimation.estimate_multiclass(calibration, proba, min_samples=30).values
        truth = labels.astype(np.int64)
        for name in ("accuracy", "f1_macro", "precision_macro", "recall_macro", "auc_ovr"):
            realized = getattr(multiclass, name)(truth, proba)
            assert found[name] == pytest.approx(realized, abs=0.03), (shift, name)
    few = estimation.estimate_multiclass(calibration, proba[:10], min_samples=30)
    assert few.values["accuracy"] is None and few.reasons["accuracy"] == "insufficient_samples"


@pytest.mark.parametrize(("candidate_noise", "verdict"), [(1.0, "pass"), (3.0, "fail")])
def test_a_rollout_analysis_on_rmse_fails_the_higher_error_and_passes_the_lower(
    candidate_noise: float, verdict: str
) -> None:
    from retrain_cli.versions.rollouts.analysis import Rule, compare_paired, compare_unpaired

    rng = np.random.default_rng(1)
    truth = rng.normal(100, 10, 2000)
    champion = truth + rng.normal(0, 2.0, truth.size)
    candidate = truth + rng.normal(0, candidate_noise, truth.size)
    rule = Rule("rmse", max_drop=0.1, min_samples=100, confidence=0.95, resamples=300)
    paired = compare_paired(rule, truth, champion, candidate)
    unpaired = compare_unpaired(rule, (truth, champion), (truth, candidate))
    for judged in (paired, unpaired):
        assert judged.verdict == verdict, judged.reason
        assert judged.difference == pytest.approx(judged.candidate - judged.champion)
        assert judged.low is not None and judged.high is not None and judged.low <= judged.high
        assert "(lower is better)" in judged.reason
