"""Label-free estimates of the new tasks against NannyML 0.13 on its own bundled datasets.

    python benchmarks/bench_label_free_tasks.py [--chunk-size 6000] [--write]

1. Regression, direct loss estimation (DLE): NannyML's synthetic car price dataset (reference:
   labelled; analysis: its targets held apart). `estimation.fit_loss_models` on the reference's
   features and prediction, then each analysis chunk's estimated RMSE and MAE, beside NannyML's
   DLE (default hyperparameters, no tuning) on the same chunks and the realized values.
2. Multiclass CBPE: NannyML's synthetic multiclass credit card dataset, three classes:
   `estimation.calibrate_classes` on the reference, each chunk's estimated accuracy, macro F1,
   precision and recall and one-vs-rest AUC, beside NannyML's CBPE and the realized values.

For each metric: the largest difference from NannyML over the chunks, and the mean distance of
each to the realized values. NannyML pins older LightGBM and plotly: it is never a dependency of
retrain-cli. Run the script from a virtual environment of its own, with
`pip install nannyml==0.13.0` and retrain-cli on the path (`PYTHONPATH=.`, or
`pip install --no-deps -e .`).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine, update_section

from retrain_cli.performance import estimation
from retrain_cli.statistics import multiclass, regression

CAR_FEATURES = [
    "car_age",
    "km_driven",
    "price_new",
    "accident_count",
    "door_count",
    "fuel",
    "transmission",
]
CARD_FEATURES = [
    "acq_channel",
    "app_behavioral_score",
    "requested_credit_limit",
    "app_channel",
    "credit_bureau_score",
    "stated_income",
    "is_customer",
]
CLASSES = ["prepaid_card", "highstreet_card", "upmarket_card"]
OURS_TO_NANNYML = {
    "accuracy": "accuracy",
    "f1_macro": "f1",
    "precision_macro": "precision",
    "recall_macro": "recall",
    "auc_ovr": "roc_auc",
}


def chunks(frame: Any, size: int) -> list[Any]:
    """Consecutive chunks of `size` rows, as NannyML's `chunk_size` makes them (the last one
    only when full)."""
    return [frame.iloc[i : i + size] for i in range(0, len(frame) - size + 1, size)]


def loss_inputs(frame: Any) -> Any:
    inputs = frame[CAR_FEATURES].copy()
    for name in ("fuel", "transmission"):
        inputs[name] = inputs[name].astype("category")
    inputs["__prediction__"] = frame["y_pred"].to_numpy()
    return inputs.reset_index(drop=True)


def regression_rows(size: int) -> tuple[list[str], dict[str, float]]:
    import nannyml

    reference, analysis, targets = nannyml.load_synthetic_car_price_dataset()
    analysis = analysis.merge(targets, on="id")
    models = estimation.fit_loss_models(
        loss_inputs(reference),
        reference["y_true"].to_numpy(dtype=float),
        reference["y_pred"].to_numpy(dtype=float),
        min_samples=30,
    )
    dle = nannyml.DLE(
        feature_column_names=CAR_FEATURES,
        y_pred="y_pred",
        y_true="y_true",
        metrics=["rmse", "mae"],
        chunk_size=size,
        tune_hyperparameters=False,
    )
    dle.fit(reference)
    theirs = dle.estimate(analysis.drop(columns=["y_true"])).filter(period="analysis").to_df()
    lines = [
        "| chunk | realized RMSE | estimated | NannyML | realized MAE | estimated | NannyML |",
        "|---|---|---|---|---|---|---|",
    ]
    gaps: dict[str, list[float]] = {"rmse": [], "mae": []}
    off: dict[str, list[float]] = {"rmse": [], "mae": [], "nannyml rmse": [], "nannyml mae": []}
    for index, chunk in enumerate(chunks(analysis, size)):
        found = models.estimate(loss_inputs(chunk), min_samples=30).values
        truth, predicted = chunk["y_true"].to_numpy(float), chunk["y_pred"].to_numpy(float)
        realized = {
            "rmse": regression.rmse(truth, predicted),
            "mae": regression.mae(truth, predicted),
        }
        cells = [f"{index}"]
        for metric in ("rmse", "mae"):
            mine = float(found[metric] or np.nan)
            nml = float(theirs[(metric, "value")].iloc[index])
            gaps[metric].append(abs(mine - nml))
            off[metric].append(abs(mine - realized[metric]))
            off[f"nannyml {metric}"].append(abs(nml - realized[metric]))
            cells += [f"{realized[metric]:.1f}", f"{mine:.1f}", f"{nml:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    summary = {f"largest |ours - NannyML| {m}": max(gaps[m]) for m in gaps}
    summary |= {f"mean |estimate - realized| {m}": float(np.mean(v)) for m, v in off.items()}
    return lines, summary


def probabilities(frame: Any) -> Any:
    return frame[[f"y_pred_proba_{c}" for c in CLASSES]].to_numpy(dtype=float)


def classes_of(frame: Any) -> Any:
    return frame["y_true"].map({c: i for i, c in enumerate(CLASSES)}).to_numpy(dtype=float)


def multiclass_rows(size: int) -> tuple[list[str], dict[str, float]]:
    import nannyml

    reference, analysis, targets = nannyml.load_synthetic_multiclass_classification_dataset()
    analysis = analysis.merge(targets, on="id")
    calibration = estimation.calibrate_classes(
        classes_of(reference), probabilities(reference), min_samples=30
    )
    cbpe = nannyml.CBPE(
        y_pred_proba={c: f"y_pred_proba_{c}" for c in CLASSES},
        y_pred="y_pred",
        y_true="y_true",
        problem_type="classification_multiclass",
        metrics=list(OURS_TO_NANNYML.values()),
        chunk_size=size,
    )
    cbpe.fit(reference)
    theirs = cbpe.estimate(analysis.drop(columns=["y_true"])).filter(period="analysis").to_df()
    lines = [
        "| chunk | "
        + " | ".join(f"{m} (realized / ours / NannyML)" for m in OURS_TO_NANNYML)
        + " |",
        "|---|" + "---|" * len(OURS_TO_NANNYML),
    ]
    gaps: dict[str, list[float]] = {m: [] for m in OURS_TO_NANNYML}
    off: dict[str, list[float]] = {}
    for index, chunk in enumerate(chunks(analysis, size)):
        proba = probabilities(chunk)
        found = estimation.estimate_multiclass(calibration, proba, min_samples=30).values
        truth = classes_of(chunk).astype(np.int64)
        cells = [f"{index}"]
        for ours, name in OURS_TO_NANNYML.items():
            realized = getattr(multiclass, ours)(truth, proba)
            mine = float(found[ours] or np.nan)
            nml = float(theirs[(name, "value")].iloc[index])
            gaps[ours].append(abs(mine - nml))
            off.setdefault(ours, []).append(abs(mine - realized))
            off.setdefault(f"nannyml {ours}", []).append(abs(nml - realized))
            cells.append(f"{realized:.4f} / {mine:.4f} / {nml:.4f}")
        lines.append("| " + " | ".join(cells) + " |")
    summary = {f"largest |ours - NannyML| {m}": max(v) for m, v in gaps.items()}
    summary |= {f"mean |estimate - realized| {m}": float(np.mean(v)) for m, v in off.items()}
    return lines, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunk-size", type=int, default=6000)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")  # no telemetry (no network here)
    import lightgbm
    import nannyml

    size = args.chunk_size
    sections = []
    for title, rows in (
        ("Regression: DLE on NannyML's car price dataset", regression_rows),
        ("Multiclass: CBPE on NannyML's credit card dataset", multiclass_rows),
    ):
        table, summary = rows(size)
        sections += [f"### {title}", "", *table, "", "| summary | value |", "|---|---|"]
        sections += [f"| {name} | {value:.4f} |" for name, value in summary.items()]
        sections.append("")
    text = "\n".join(
        [
            "## Label-free estimates of regression and multiclass models (issue #37)",
            "",
            f"Command: `python benchmarks/bench_label_free_tasks.py --chunk-size {size} "
            f"--write` ({machine()}; NannyML {nannyml.__version__} with LightGBM "
            f"{lightgbm.__version__}, in a virtual environment of its own). Chunks of {size:,} "
            "analysis rows, as NannyML's `chunk_size` cuts them. The second half of each "
            "dataset's analysis period changes how the outcome follows from the features (a "
            "concept shift): an estimate from the predictions alone cannot follow it, and both "
            "tools miss the realized values there by the same amount.",
            "",
            *sections,
        ]
    )
    print(text)
    if args.write:
        update_section("label-free-tasks", text)


if __name__ == "__main__":
    main()
