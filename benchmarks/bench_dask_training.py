"""A large training set trained and profiled here and on a Dask cluster: wall time and peak memory
per process.

    .venv/bin/python benchmarks/bench_dask_training.py [--rows 20000000] [--features 25]
                                                       [--rounds 50] [--workers 2] [--write]

Writes a Parquet dataset of ROWS time-ordered training rows (1M-row files, FEATURES float64
features, a 0/1 label), then, for a `compute: local` job and a `compute: dask` job whose
scheduler is a `distributed.LocalCluster` of WORKERS single-threaded worker processes on this
machine: `retrain-cli drift profile` (the dataset as the reference window) and `retrain-cli
retrain` (ROUNDS rounds of LightGBM, the newest 20% held out). Reports each command's wall time,
its peak RSS, each worker's peak RSS, and both models' hold-out AUC. `--write` updates
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine, timed_run, timed_run_rss, update_section
from bench_retrain import make_data

CLI = [sys.executable, "-m", "retrain_cli"]
FILE_ROWS = 1_000_000


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _write(folder: Path, rows: int, features: int) -> None:
    folder.mkdir()
    for part in range(max(1, rows // FILE_ROWS)):
        frame = make_data(FILE_ROWS, features, seed=part)
        frame["ts"] += pd.Timedelta(minutes=part * FILE_ROWS)
        frame.to_parquet(folder / f"{part:04d}.parquet")


def _auc(model: str, env: dict[str, str]) -> str:
    """The hold-out AUC of the model's newest version."""
    listed = subprocess.run(
        [*CLI, "versions", "list", model, "--json"], env=env, capture_output=True, check=True
    )
    versions = json.loads(listed.stdout)["versions"]
    return f"{max(versions, key=lambda v: v['version'])['metrics']['auc']:.4f}"


def _measure(name: str, env: dict[str, str]) -> dict[str, str]:
    profiled = timed_run_rss([*CLI, "drift", "profile", name, "--quiet"], env)
    trained = timed_run_rss([*CLI, "retrain", name, "--quiet"], env)
    assert profiled[1] == 0 and trained[1] == 0
    return {
        "profile": f"{profiled[0]:.1f} s, {profiled[2]:.0f} MB",
        "retrain": f"{trained[0]:.1f} s, {trained[2]:.0f} MB",
        "auc": _auc(f"bench-{name}", env),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--features", type=int, default=25)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    from distributed import Client, LocalCluster

    rows: dict[str, dict[str, str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _write(folder / "train", args.rows, args.features)
        jobs = [
            {
                "name": name,
                "model": f"bench-{name}",
                "type": "lightgbm",
                "compute": name,
                "data": {"train": "train/", "reference": "train/"},
                "target": "y",
                "time_column": "ts",
                "hyperparameters": {"num_boost_round": args.rounds},
            }
            for name in ("local", "dask")
        ]
        (folder / "jobs.yaml").write_text(yaml.safe_dump({"jobs": jobs}))
        env = {**os.environ, "RETRAIN_HOME": str(folder / "home")}
        assert timed_run([*CLI, "db", "init", "--quiet"], env)[1] == 0
        assert timed_run([*CLI, "jobs", "apply", "-f", str(folder / "jobs.yaml")], env)[1] == 0
        rows["local"] = _measure("local", env)
        with LocalCluster(
            n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster:
            env["RETRAIN_DASK_SCHEDULER"] = cluster.scheduler_address
            rows["dask"] = _measure("dask", env)
            with Client(cluster) as client:
                workers = sorted(client.run(_peak_mb).values())
    text = (
        f"`.venv/bin/python benchmarks/bench_dask_training.py --rows {args.rows} --features "
        f"{args.features} --rounds {args.rounds} --workers {args.workers}` on {machine()}.\n\n"
        f"A {args.rows:,}-row training set of {args.features} float64 features (a Parquet "
        f"dataset of 1M-row files, {args.rows * (args.features + 2) * 8 / 1e9:.1f} GB in "
        f"memory), {args.rounds} rounds, the newest 20% held out; one run each (wall, peak RSS "
        "of the command):\n\n"
        "| where | `drift profile` | `retrain` | hold-out AUC | peak RSS per worker |\n"
        "|---|---|---|---|---|\n"
        f"| here (`compute: local`) | {rows['local']['profile']} | {rows['local']['retrain']} "
        f"| {rows['local']['auc']} | - |\n"
        f"| a LocalCluster of {args.workers} worker processes (`compute: dask`) "
        f"| {rows['dask']['profile']} | {rows['dask']['retrain']} | {rows['dask']['auc']} "
        f"| {', '.join(f'{w:.0f} MB' for w in workers)} |\n"
    )
    print(text)
    if args.write:
        update_section("dask-training", "## Training on a Dask cluster\n\n" + text)


if __name__ == "__main__":
    main()
