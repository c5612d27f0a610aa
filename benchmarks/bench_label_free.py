"""Label-free monitoring: estimated performance against the realized, the domain classifier's
cost on large windows, and how soon change points are found.

    .venv/bin/python benchmarks/bench_label_free.py [--rows 20000] [--shifts 0 0.25 0.5 1 1.5]
                                                    [--window-rows 1000000] [--columns 25]
                                                    [--samples 50000 200000] [--write]

1. CBPE: a calibrated logistic model scored on a reference window (labels known) and on current
   windows whose feature moved by each shift (covariate shift: the scores move, the
   score-to-outcome relation holds). For each shift, the estimated AUC and F1 against the
   realized ones, here and, when `nannyml` is importable, NannyML's CBPE on the same rows
   (NannyML is not a dependency: run the script from a virtual environment with `pip install
   nannyml statsmodels` and `pip install --no-deps -e .`). Target: within 0.02.
2. The domain classifier on WINDOW_ROWS + WINDOW_ROWS rows x COLUMNS numeric columns (the
   current window with one pair of columns correlated), for each sample size per window: wall
   time (median of 3) and the AUC. Target: a bounded time, whatever the windows' size.
3. Change points: ADWIN and Page-Hinkley (river) on 100 streams with one change, and 100
   without: the delay, and the false alarms.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine, median, update_section

from retrain_cli.drift import multivariate
from retrain_cli.performance import estimation
from retrain_cli.statistics import performance


def scored(n: int, shift: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(shift, 1.0, n)
    p = 1 / (1 + np.exp(-(2 * x - 1)))
    return (rng.random(n) < p).astype(np.float64), p


def nannyml_cbpe(
    ref: tuple[np.ndarray, np.ndarray], cur: tuple[np.ndarray, np.ndarray]
) -> dict[str, float] | None:
    os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")  # no telemetry (and no network here)
    try:
        import nannyml
        import pandas as pd
    except ImportError:
        return None

    def frame(labels: np.ndarray, scores: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(
            {"y_pred_proba": scores, "y_pred": (scores >= 0.5).astype(int), "y_true": labels}
        )

    estimator = nannyml.CBPE(
        y_pred_proba="y_pred_proba",
        y_pred="y_pred",
        y_true="y_true",
        metrics=["roc_auc", "f1"],
        problem_type="classification_binary",
        chunk_number=1,
    )
    estimator.fit(frame(*ref))
    result = estimator.estimate(frame(cur[0] * np.nan, cur[1])).to_df()
    return {
        "auc": float(result[("roc_auc", "value")].iloc[-1]),
        "f1": float(result[("f1", "value")].iloc[-1]),
    }


def cbpe_table(rows: int, shifts: list[float]) -> list[str]:
    reference = scored(rows, 0.0, seed=1)
    calibration = estimation.calibrate(*reference, min_samples=30)
    lines = [
        "| shift | realized AUC | estimated | NannyML | realized F1 | estimated | NannyML |",
        "|---|---|---|---|---|---|---|",
    ]
    worst = 0.0
    for i, shift in enumerate(shifts):
        labels, scores = scored(rows, shift, seed=10 + i)
        found = estimation.estimate(calibration, scores, threshold=0.5, min_samples=30)
        auc = performance.auc(labels, scores)
        f1 = performance.f1(labels, scores, 0.5)
        theirs = nannyml_cbpe(reference, (labels, scores))
        assert found.values["auc"] is not None and found.values["f1"] is not None
        worst = max(worst, abs(found.values["auc"] - auc), abs(found.values["f1"] - f1))
        lines.append(
            f"| {shift:+.2f} | {auc:.4f} | {found.values['auc']:.4f} | "
            f"{'-' if theirs is None else format(theirs['auc'], '.4f')} | {f1:.4f} | "
            f"{found.values['f1']:.4f} | "
            f"{'-' if theirs is None else format(theirs['f1'], '.4f')} |"
        )
    lines.append("")
    lines.append(f"Largest difference from the realized value: {worst:.4f} (target 0.02).")
    return lines


def classifier_table(window_rows: int, columns: int, samples: list[int]) -> list[str]:
    import pyarrow as pa

    rng = np.random.default_rng(0)
    names = [f"c{i}" for i in range(columns)]
    reference = pa.table({n: rng.normal(size=window_rows) for n in names})
    data = {n: rng.normal(size=window_rows) for n in names}
    data["c1"] = 0.6 * data["c0"] + 0.8 * data["c1"]  # same marginal, new correlation
    current = pa.table(data)
    features = [(n, "numeric") for n in names]
    lines = [
        "| rows sampled from each window | median wall time | AUC | drifted |",
        "|---|---|---|---|",
    ]
    for sample in samples:
        times, found = [], None
        for _ in range(3):
            start = time.perf_counter()
            found = multivariate.domain_classifier(
                multivariate.sample_table(reference, sample, seed=0),
                multivariate.sample_table(current, sample, seed=1),
                features,
                max_auc=0.6,
                folds=5,
                confidence=0.95,
                threads=0,
            )
            times.append(time.perf_counter() - start)
        assert found is not None and found.auc is not None
        lines.append(f"| {sample:,} | {median(times):.1f} s | {found.auc:.3f} | {found.drifted} |")
    return lines


def change_point_table(streams: int, rows: int, change: int) -> list[str]:
    """Per detector: the delay after one change (median and largest over `streams` streams)
    and the false alarms on as many streams without one."""
    from retrain_cli.performance import change_points

    def stream(seed: int, at: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        labels = (rng.random(rows) < 0.5).astype(float)
        noise = np.where(np.arange(rows) < at, 0.25, 0.45)
        away = np.where(labels == 1, -1, 1) * rng.random(rows) * noise * 2
        return change_points.losses(labels, np.clip(labels + away, 0, 1))

    lines = [
        "| detector | found | median delay | largest delay | early alarms | alarms, no change |",
        "|---|---|---|---|---|---|",
    ]
    for method in change_points.METHODS:
        delays, early, false = [], 0, 0
        for seed in range(streams):
            found = change_points.detect(stream(seed, change), method, {})
            early += sum(i < change for i in found)
            after = [i - change for i in found if i >= change]
            if after:
                delays.append(after[0])
            false += len(change_points.detect(stream(10_000 + seed, rows + 1), method, {}))
        lines.append(
            f"| {method} | {len(delays)}/{streams} | {median(delays):.0f} rows | "
            f"{max(delays)} rows | {early} | {false} in {streams} streams |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--shifts", type=float, nargs="+", default=[0.0, 0.25, 0.5, 1.0, -1.0, 1.5])
    parser.add_argument("--window-rows", type=int, default=1_000_000)
    parser.add_argument("--columns", type=int, default=25)
    parser.add_argument("--samples", type=int, nargs="+", default=[50_000, 200_000])
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    cbpe = cbpe_table(args.rows, args.shifts)
    classifier = classifier_table(args.window_rows, args.columns, args.samples)
    points = change_point_table(100, 6000, 3000)
    command = (
        f"benchmarks/bench_label_free.py --rows {args.rows} --window-rows {args.window_rows} "
        f"--columns {args.columns} --write"
    )
    markdown = "\n".join(
        [
            "## Label-free monitoring: estimated performance, the domain classifier, change points",
            "",
            f"Command: `python {command}` ({machine()}; from a virtual environment that also "
            "holds NannyML, for its column)",
            "",
            f"Estimated performance (CBPE) on {args.rows:,} unlabelled rows per shift, calibrated "
            f"on {args.rows:,} labelled ones:",
            "",
            *cbpe,
            "",
            f"The domain classifier on {args.window_rows:,} + {args.window_rows:,} rows x "
            f"{args.columns} columns (one pair newly correlated, every marginal unchanged), 5 "
            "folds of 100 rounds on every core:",
            "",
            *classifier,
            "",
            "Change points on 100 streams of 6,000 rows whose squared error steps from about "
            "0.08 to 0.27 at row 3,000, and on 100 streams without a change (river's default "
            "parameters):",
            "",
            *points,
        ]
    )
    print(markdown)
    if args.write:
        update_section("label_free", markdown)


if __name__ == "__main__":
    main()
