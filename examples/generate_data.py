"""Generate time-ordered example data for the four example jobs.

    python examples/generate_data.py --out examples/data                  # a healthy baseline
    python examples/generate_data.py --out examples/data --phase drifted  # a later, drifted window

Each job gets `train`, `reference` (the tail of train), `current` (the next window) and
`predictions` (scored rows whose outcomes arrived). Labels depend on a lag of a feature, so sequence
models have something to learn; `alpha` is a trading model with per-period returns. The drifted
phase shifts feature distributions and makes the scores (and so the returns) worse.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

JOBS = {
    "fraud": {"categorical": True, "lag_feature": True},  # tabular: the lag as a feature
    "demand": {},  # sequence models find the lag themselves
    "churn": {},
    "alpha": {"trading": True},
}
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
    trading: bool = False,
    lag_feature: bool = False,
) -> pd.DataFrame:
    """`n` hourly rows from `start`: features, a label driven by a 3-step lag, and a score.

    A trading frame's `ret` is the asset's return over the period (what a long position earns);
    `position_returns` turns it into what the model's positions earned.
    """
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
    frame["y"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    frame["score"] = 1 / (1 + np.exp(-(logit + rng.normal(scale=noise * 2, size=n))))
    if trading:
        frame["ret"] = np.abs(rng.normal(0.002, 0.01, size=n)) * np.where(frame["y"] == 1, 1, -1)
    return frame


def position_returns(frame: pd.DataFrame) -> pd.DataFrame:
    """Scored predictions: `ret` becomes the return of the model's position (long above 0.5)."""
    return frame.assign(ret=np.where(frame["score"] >= 0.5, 1.0, -1.0) * frame["ret"])


def write_job(out: Path, name: str, phase: str, seed: int, **kind: bool) -> None:
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
    current.drop(columns=["y"] + (["ret"] if "trading" in kind else [])).to_parquet(
        folder / "current.parquet", index=False
    )
    predictions = position_returns(current) if "trading" in kind else current
    predictions.to_parquet(folder / "predictions.parquet", index=False)


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
