"""Retrain overhead: `retrain-cli retrain` against the plain script a careful user would write.

    .venv/bin/python benchmarks/bench_retrain.py [--rows 1000000] [--features 50] [--rounds 200]
                                                 [--repeats 5] [--write]

Both run as fresh processes on the same Parquet file, interleaved, and do the same work:
read the file, split off the newest 20% by time, `lightgbm.train` with the same parameters (the
ones retrain-cli hands LightGBM, its defaults included), score the hold-out with the new model and
with the champion's model file, compute the AUC, and save the model text. `retrain` also checks
the data, fingerprints it, writes checksums, the version and history rows, and applies the gate.
Target: the retrain at most 1.10x the plain script (medians). One untimed retrain first makes
the champion both score against. The home has one retrain slot, so that the retrain, like the
plain script, uses every core (with the default three slots it takes cores // 3 threads).
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
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine, median, timed_run, update_section

from retrain_cli.trainers.lightgbm_trainer import LightGBMTrainer

PLAIN_SCRIPT = """
import json, sys
import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

data, champion, out, params, rounds = sys.argv[1:6]
frame = pd.read_parquet(data).sort_values("ts", kind="stable")
features = [c for c in frame.columns if c not in ("ts", "y")]
split = len(frame) - round(len(frame) * 0.2)
train, holdout = frame.iloc[:split], frame.iloc[split:]
booster = lgb.train(json.loads(params), lgb.Dataset(train[features], label=train["y"]),
                    num_boost_round=int(rounds))
x = holdout[features].to_numpy(dtype=np.float64)
new_auc = roc_auc_score(holdout["y"], booster.predict(x))
old_auc = roc_auc_score(holdout["y"], lgb.Booster(model_file=champion).predict(x))
booster.save_model(out)
print(new_auc, old_auc)
"""


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
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()

    params = {"learning_rate": 0.1, "num_leaves": 31}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_data(args.rows, args.features).to_parquet(folder / "train.parquet")
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
            "gate": {"min_improvement": -1.0},  # every run promotes: the same work each time
            "hyperparameters": {**params, "num_boost_round": args.rounds},
        }
        (folder / "job.yaml").write_text(yaml.safe_dump(job))
        env = {**os.environ, "RETRAIN_HOME": str(folder / "home")}
        # one retrain slot: the retrain takes every core, as the plain script does (with the
        # default three slots it takes its share, cores // 3)
        (folder / "home").mkdir()
        (folder / "home" / "config.yaml").write_text("max_concurrent_retrains: 1\n")
        cli = [sys.executable, "-m", "retrain_cli"]
        assert timed_run([*cli, "db", "init", "--quiet"], env)[1] == 0
        assert timed_run([*cli, "jobs", "apply", "-f", str(folder / "job.yaml"), "-q"], env)[1] == 0
        retrain = [*cli, "retrain", "bench", "--json", "--force"]  # the same data every run
        assert timed_run(retrain, env)[1] == 0  # the champion
        (champion,) = (folder / "home" / "artifacts" / "bench").glob("1-*/model.txt")
        effective = LightGBMTrainer(job["hyperparameters"]).params
        plain = [sys.executable, "-c", PLAIN_SCRIPT, str(folder / "train.parquet")]
        plain += [str(champion), str(folder / "plain.txt"), json.dumps(effective)]
        plain.append(str(args.rounds))

        ours, theirs, phases = [], [], []
        for _ in range(args.repeats):
            start = time.perf_counter()
            child = subprocess.run(retrain, env=env, capture_output=True, check=True)
            ours.append(time.perf_counter() - start)
            phases.append(json.loads(child.stdout)["phases"])
            start = time.perf_counter()
            subprocess.run(plain, env=env, capture_output=True, check=True)
            theirs.append(time.perf_counter() - start)

    ratio = median(ours) / median(theirs)
    steps = list(phases[0])
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
            f"({machine()}; medians of {args.repeats} interleaved runs, each a new process)",
            "",
            "| what | median |",
            "|---|---|",
            f"| `retrain-cli retrain` end to end | {median(ours):.2f} s |",
            "| the plain script (read Parquet, split, `lightgbm.train`, score the hold-out with "
            f"the new model and the champion, AUC, save) | {median(theirs):.2f} s |",
            f"| ratio retrain / plain script | {ratio:.2f} (target at most 1.10) |",
            "",
            "Every run, in the order they ran (seconds; the steps are the retrain's own `phases`):",
            "",
            "| run | retrain | plain script | " + " | ".join(steps) + " |",
            "|---" * (3 + len(steps)) + "|",
            *(
                f"| {i + 1} | {ours[i]:.2f} | {theirs[i]:.2f} | "
                + " | ".join(f"{phases[i].get(name, 0.0):.2f}" for name in steps)
                + " |"
                for i in range(args.repeats)
            ),
        ]
    )
    print(markdown)
    if args.write:
        update_section("bench_retrain", markdown)


if __name__ == "__main__":
    main()
