"""A large current window counted here and on a Dask cluster: wall time and peak memory per process.

    .venv/bin/python benchmarks/bench_dask.py [--rows 50000000] [--workers 2] [--write]

Writes a Parquet dataset of ROWS current rows (1M-row files, 20 numeric + 5 categorical columns;
about 170 bytes of disk per row) and a 1M-row reference, builds the reference profile once, then
runs `retrain-cli drift check` (profile mode, psi) for a `compute: local` job and for a
`compute: dask` job whose scheduler is a `distributed.LocalCluster` of WORKERS single-threaded
worker processes on this machine. Reports each check's wall time, the peak RSS of the command's
process, and the peak RSS of each worker. `--write` updates docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine, timed_run, timed_run_rss, update_section
from bench_drift import make_data

CLI = [sys.executable, "-m", "retrain_cli"]


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    from distributed import Client, LocalCluster

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_data(1_000_000, 1, 0.0).to_parquet(folder / "ref.parquet")
        (folder / "cur").mkdir()
        for part in range(max(1, args.rows // 1_000_000)):
            make_data(1_000_000, 100 + part, 0.3).to_parquet(folder / "cur" / f"{part:04d}.parquet")
        jobs = [
            {
                "name": name,
                "model": "bench",
                "type": "lightgbm",
                "compute": name,
                "data": {"train": "ref.parquet", "reference": "ref.parquet", "current": "cur/"},
                "target": "y",
                "drift": {"mode": "profile"},
            }
            for name in ("local", "dask")
        ]
        (folder / "jobs.yaml").write_text(yaml.safe_dump({"jobs": jobs}))
        env = {**os.environ, "RETRAIN_HOME": str(folder / "home")}
        assert timed_run([*CLI, "db", "init", "--quiet"], env)[1] == 0
        assert timed_run([*CLI, "jobs", "apply", "-f", str(folder / "jobs.yaml")], env)[1] == 0
        assert timed_run([*CLI, "drift", "profile", "local", "dask"], env)[1] == 0
        local, code, local_rss = timed_run_rss([*CLI, "drift", "check", "local", "--quiet"], env)
        assert code in (0, 3)
        with LocalCluster(
            n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster:
            env["RETRAIN_DASK_SCHEDULER"] = cluster.scheduler_address
            remote, code, remote_rss = timed_run_rss(
                [*CLI, "drift", "check", "dask", "--quiet"], env
            )
            assert code in (0, 3)
            with Client(cluster) as client:
                workers = sorted(client.run(_peak_mb).values())
    text = (
        f"`.venv/bin/python benchmarks/bench_dask.py --rows {args.rows} --workers "
        f"{args.workers}` on {machine()}.\n\n"
        f"A {args.rows:,}-row current window (a Parquet dataset of 1M-row files) against the "
        "profile of a 1M-row reference, psi deciding, one run each:\n\n"
        "| where the window is counted | wall | peak RSS of the command | peak RSS per worker |\n"
        "|---|---|---|---|\n"
        f"| here (`compute: local`) | {local:.1f} s | {local_rss:.0f} MB | - |\n"
        f"| a LocalCluster of {args.workers} worker processes (`compute: dask`) | {remote:.1f} s "
        f"| {remote_rss:.0f} MB | {', '.join(f'{w:.0f} MB' for w in workers)} |\n"
    )
    print(text)
    if args.write:
        update_section("dask", "## Drift checks on a Dask cluster\n\n" + text)


if __name__ == "__main__":
    main()
