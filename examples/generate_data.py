"""Generate time-ordered example data for the five example jobs, one per kind of task.

    python examples/generate_data.py --out examples/data                  # a healthy baseline
    python examples/generate_data.py --out examples/data --phase drifted  # a later, drifted window

Each job gets `train`, `reference` (the tail of train), `current` (the next window) and
`predictions` (scored rows whose outcomes arrived). Outcomes depend on a lag of a feature, so
sequence models have something to learn:

- `fraud`, `churn`: a 0/1 outcome, scored by its probability (binary);
- `demand`: units sold, forecast in units (regression);
- `alpha`: the asset's next return, forecast as a return, traded long or short on its sign
  (regression, judged on Sharpe and IC);
- `risk`: a grade of four classes, scored by a probability per class (multiclass).

The drifted phase shifts feature distributions and makes the predictions (and so the returns)
worse.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

JOBS: dict[str, dict[str, Any]] = {
    "fraud": {"categorical": True, "lag_feature": True},  # tabular: the lag as a feature
    "demand": {"task": "demand"},  # sequence models find the lag themselves
    "churn": {},
    "alpha": {"task": "returns"},
    "risk": {"task": "grade", "lag_feature": True},
}
GRADES = np.array(["low", "medium", "high", "critical"])
GRADE_CUTS = np.array([-1.5, 0.0, 1.5])  # of the risk's latent value
N_TRAIN, N_WINDOW = 4000, 2000
START = pd.Timestamp("2026-01-01", tz="UTC")
CATEGORIES = np.array(["grocery", "travel", "online", "fuel", "electronics"])


def make_frame(
    rng: np.random.Generator,
    n: int,
    start: pd.Timestamp,
    *,
    shift: float = 0.0,
    noise: float = 0.5,
    categorical: bool = False,
    task: str = "binary",
    lag_feature: bool = False,
) -> pd.DataFrame:
    """`n` hourly rows from `start`: features, an outcome driven by a 3-step lag, and the
    model's prediction (`score`, or `score_<grade>` per grade)."""
    features = rng.normal(loc=shift, scale=1.0 + shift / 2, size=(n + 3, 5))
    lagged = features[:-3, 0]  # f0 three periods ago
    features = features[3:]
    logit = 1.8 * lagged + 0.8 * features[:, 1] - 0.5 * features[:, 2]
    frame = pd.DataFrame(features, columns=[f"f{i}" for i in range(5)])
    frame.insert(0, "ts", pd.date_range(start, periods=n, freq="h"))
    if lag_feature:
        frame["f0_lag3"] = lagged
    if categorical:
        weights = np.array([0.4, 0.1, 0.3, 0.15, 0.05])
        if shift:
            weights = weights[::-1]
        frame["merchant_category"] = rng.choice(CATEGORIES, size=n, p=weights / weights.sum())
        logit += np.where(frame["merchant_category"] == "online", 0.8, 0.0)
    if task == "binary":
        frame["y"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
        frame["score"] = 1 / (1 + np.exp(-(logit + rng.normal(scale=noise * 2, size=n))))
        return frame
    guess = logit + rng.normal(scale=noise * 2, size=n)  # what the serving model sees
    if task == "demand":  # units sold, and the forecast in units
        frame["units"] = np.round(200 + 25 * logit + rng.normal(scale=5, size=n), 1)
        frame["score"] = 200 + 25 * guess
    elif task == "returns":  # the asset's next return, and the forecast return
        frame["ret"] = 0.002 * logit + rng.normal(scale=0.004, size=n)
        frame["score"] = 0.002 * guess
    elif task == "grade":  # a risk grade, and a probability per grade
        frame["grade"] = GRADES[np.digitize(logit + rng.normal(scale=0.5, size=n), GRADE_CUTS)]
        centres = np.array([-2.5, -0.75, 0.75, 2.5])
        closeness = -((guess[:, None] - centres) ** 2) / 2
        proba = np.exp(closeness - closeness.max(axis=1, keepdims=True))
        proba /= proba.sum(axis=1, keepdims=True)
        for grade, column in zip(GRADES, proba.T, strict=True):
            frame[f"score_{grade}"] = column
    return frame


OUTCOMES = {"demand": "units", "returns": "ret", "grade": "grade"}  # else `y`


def write_job(out: Path, name: str, phase: str, seed: int, **kind: Any) -> None:
    rng = np.random.default_rng(seed)
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    train = make_frame(rng, N_TRAIN, START, **kind)
    later = START + pd.Timedelta(hours=N_TRAIN)
    drifted = phase == "drifted"
    current = make_frame(
        rng, N_WINDOW, later, shift=1.0 if drifted else 0.0, noise=3.0 if drifted else 0.5, **kind
    )
    if phase == "baseline":
        train.to_parquet(folder / "train.parquet", index=False)
        train.tail(N_WINDOW).to_parquet(folder / "reference.parquet", index=False)
    else:  # the drifted window joins the training data for the next retrain
        pd.concat([train, current]).to_parquet(folder / "train.parquet", index=False)
    outcome = OUTCOMES.get(kind.get("task", ""), "y")
    current.drop(columns=[outcome]).to_parquet(folder / "current.parquet", index=False)
    current.to_parquet(folder / "predictions.parquet", index=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "data")
    parser.add_argument("--phase", choices=["baseline", "drifted"], default="baseline")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    for offset, (name, kind) in enumerate(JOBS.items()):
        write_job(args.out, name, args.phase, args.seed + offset, **kind)
        print(f"wrote {args.out / name} ({args.phase})")


if __name__ == "__main__":
    main()
