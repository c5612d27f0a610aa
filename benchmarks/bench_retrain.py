"""Retrain overhead: `retrain-cli retrain` against plain `lightgbm.train` on the same data.

    .venv/bin/python benchmarks/bench_retrain.py [--rows 1000000] [--features 50] [--rounds 200]
                                                 [--repeats 2] [--write]

All three train the same parameters (those retrain-cli hands LightGBM, its defaults included)
on the same 80% time-ordered split; plain LightGBM runs from a float64 matrix and from an Arrow
table, and the faster of the two is the baseline. The pipeline's overhead is everything
`retrain` does besides training: start-up, Parquet loading and validation, the data
fingerprint, hold-out evaluation, artifact writing and checksums, database rows. Target: under
15% of the training time. Runs are interleaved; medians are reported.

The overhead is given two ways. End to end: the median retrain minus the median plain
training; it carries the run-to-run noise of two 15-second trainings (about 0.5 s here). Around
training: each retrain's wall time minus its own `train` phase, whose median has little noise
but would not show a training that runs slower inside retrain-cli; the `train` row of the steps
table shows that.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine, median, timed_run, update_section

from retrain_cli.trainers.lightgbm_trainer import LightGBMTrainer

STEPS = {
    "load": "load: read the Parquet file, validate, fingerprint (LightGBM imports meanwhile)",
    "train": "train: LightGBM Dataset and boosting",
    "evaluate": "evaluate: score the new model on the hold-out (the newest 20% of rows)",
    "champion": "champion: load the active model and score the same hold-out",
    "register": "register: gate, artifact files and checksums, version and history rows",
    "process": "process: start-up, imports, database, slot, exit (wall time not in a step)",
}


def make_data(rows: int, features: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, features)).astype(np.float64)
    logit = x[:, :5] @ np.array([1.5, -1.0, 0.8, 0.5, -0.3]) + rng.normal(size=rows)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(features)])
    frame.insert(0, "ts", pd.date_range("2025-01-01", periods=rows, freq="min", tz="UTC"))
    frame["y"] = (logit > 0).astype(np.int8)
    return frame


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=200)  # the lightgbm default config
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()

    import lightgbm as lgb

    params = {
        "objective": "binary",
        "verbosity": -1,
        "seed": 0,
        "deterministic": True,
        "learning_rate": 0.1,
        "num_leaves": 31,
    }
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        frame = make_data(args.rows, args.features)
        frame.to_parquet(folder / "train.parquet")
        job = {
            "name": "bench",
            "model": "bench",
            "type": "lightgbm",
            "strategy": "full",
            "data": {"train": "train.parquet"},
            "target": "y",
            "time_column": "ts",
            "thresholds": {"performance": 0.5},
            "timeout": "2h",
            "hyperparameters": {**params, "num_boost_round": args.rounds},
        }
        (folder / "job.yaml").write_text(yaml.safe_dump(job))
        env = {**os.environ, "RETRAIN_HOME": str(folder / "home")}
        cli = [sys.executable, "-m", "retrain_cli"]
        assert timed_run([*cli, "db", "init", "--quiet"], env)[1] == 0
        assert timed_run([*cli, "jobs", "apply", "-f", str(folder / "job.yaml"), "-q"], env)[1] == 0

        # plain LightGBM gets exactly what the trainer gives it, defaults included
        effective = LightGBMTrainer(job["hyperparameters"]).params
        split = len(frame) - round(len(frame) * 0.2)
        features = [c for c in frame.columns if c.startswith("f")]
        # both plain inputs, prepared outside the timing: one float64 matrix, and the Arrow
        # table LightGBM bins faster (what retrain-cli hands it); the faster one is the baseline
        x_train = frame[features].iloc[:split].to_numpy(dtype=np.float64)
        x_arrow = pa.Table.from_pandas(frame[features].iloc[:split], preserve_index=False)
        y_train = frame["y"].iloc[:split].to_numpy()
        ours, plain, plain_arrow = [], [], []
        steps: dict[str, list[float]] = {}
        runs: list[dict[str, float]] = []  # each run's phases
        for _ in range(args.repeats):
            start = time.perf_counter()
            child = subprocess.run(
                [*cli, "retrain", "bench", "--json"], env=env, capture_output=True, check=True
            )
            ours.append(time.perf_counter() - start)
            result = json.loads(child.stdout)
            # what the run itself timed; the rest of the wall time is the process around it
            phases = {**result["phases"], "process": ours[-1] - sum(result["phases"].values())}
            runs.append(phases)
            for name, seconds in phases.items():
                steps.setdefault(name, []).append(seconds)
            for data, times in ((x_train, plain), (x_arrow, plain_arrow)):
                start = time.perf_counter()
                lgb.train(effective, lgb.Dataset(data, label=y_train), num_boost_round=args.rounds)
                times.append(time.perf_counter() - start)

    baseline = min(median(plain), median(plain_arrow))
    overhead = median(ours) - baseline
    around = median([total - run["train"] for total, run in zip(ours, runs, strict=True)])
    command = (
        f"benchmarks/bench_retrain.py --rows {args.rows} --features {args.features} "
        f"--rounds {args.rounds} --repeats {args.repeats} --write"
    )
    markdown = "\n".join(
        [
            f"## LightGBM retrain: {args.rows:,} rows x {args.features} features, "
            f"{args.rounds} rounds",
            "",
            f"Command: `python {command}`",
            f"({machine()}; medians of {args.repeats} interleaved runs)",
            "",
            "| what | median |",
            "|---|---|",
            f"| `retrain-cli retrain` end to end (a new process) | {median(ours):.2f} s |",
            f"| plain `lightgbm.train`, same split and parameters, a float64 matrix in memory | "
            f"{median(plain):.2f} s |",
            f"| plain `lightgbm.train`, the same from an Arrow table in memory | "
            f"{median(plain_arrow):.2f} s |",
            f"| pipeline overhead (load, fingerprint, evaluate, artifact, database, start-up), "
            f"end to end: the retrain minus the faster plain training | "
            f"{overhead:.2f} s = {overhead / baseline:.1%} of the faster plain training "
            "(target < 15%) |",
            f"| the same around training: each retrain minus its own `train` phase | "
            f"{around:.2f} s = {around / baseline:.1%} of the faster plain training "
            "(target < 15%) |",
            "",
            "Every run, in the order they ran (seconds):",
            "",
            "| run | retrain | plain matrix | plain Arrow | " + " | ".join(steps) + " |",
            "|---" * (4 + len(steps)) + "|",
            *(
                f"| {i + 1} | {ours[i]:.2f} | {plain[i]:.2f} | {plain_arrow[i]:.2f} | "
                + " | ".join(f"{runs[i][name]:.2f}" if name in runs[i] else "-" for name in steps)
                + " |"
                for i in range(args.repeats)
            ),
            "",
            "Where a retrain's time goes, from the `phases` of its own `--json` output (medians; "
            "the first run has no champion to score):",
            "",
            "| step | median | share of the plain training |",
            "|---|---|---|",
            *(
                f"| {STEPS.get(name, name)} | {median(times):.2f} s | "
                f"{median(times) / baseline:.1%} |"
                for name, times in steps.items()
            ),
        ]
    )
    print(markdown)
    if args.write:
        update_section("bench_retrain", markdown)


if __name__ == "__main__":
    main()
