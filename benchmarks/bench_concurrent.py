"""Three LightGBM retrains at once against the same three back to back, total wall time.

    .venv/bin/python benchmarks/bench_concurrent.py [--rows 200000] [--features 20]
                                                    [--rounds 100] [--repeats 3] [--write]

Two settings, measured side by side in one run: each retrain on every core (`num_threads: 0` in
the job, what every retrain did before cores were shared) and each retrain on its share of the
cores (no `num_threads`: cores over `max_concurrent_retrains`, 3). Every retrain is a fresh
`retrain-cli retrain --force` process of its own job and data. Target: concurrent no slower
than 1.1x back to back.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine, median, timed_run, update_section
from bench_retrain import make_data

JOBS = ("a", "b", "c")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        env = {**os.environ, "RETRAIN_HOME": str(folder / "home")}
        for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env.pop(name, None)
        cli = [sys.executable, "-m", "retrain_cli"]
        assert timed_run([*cli, "db", "init", "--quiet"], env)[1] == 0
        settings = {"every core": {"num_threads": 0}, "shared": {}}
        for index, name in enumerate(JOBS):
            make_data(args.rows, args.features, seed=index).to_parquet(folder / f"{name}.parquet")
            for label, extra in settings.items():
                job = {
                    "name": f"{name}-{label.replace(' ', '-')}",
                    "model": f"{name}-{label.replace(' ', '-')}",
                    "type": "lightgbm",
                    "strategy": "full",
                    "data": {"train": f"{name}.parquet"},
                    "target": "y",
                    "time_column": "ts",
                    "thresholds": {"performance": 0.5},
                    "hyperparameters": {"num_boost_round": args.rounds, **extra},
                }
                path = folder / f"{job['name']}.yaml"
                path.write_text(yaml.safe_dump(job))
                assert timed_run([*cli, "jobs", "apply", "-f", str(path), "-q"], env)[1] == 0

        def retrain(job: str) -> list[str]:
            return [*cli, "retrain", job, "--force", "--quiet"]

        def back_to_back(label: str) -> float:
            start = time.perf_counter()
            for name in JOBS:
                subprocess.run(retrain(f"{name}-{label}"), env=env, check=True)
            return time.perf_counter() - start

        def concurrent(label: str) -> float:
            start = time.perf_counter()
            running = [subprocess.Popen(retrain(f"{name}-{label}"), env=env) for name in JOBS]
            assert all(process.wait() == 0 for process in running)
            return time.perf_counter() - start

        times: dict[tuple[str, str], list[float]] = {}
        for _ in range(args.repeats):
            for label in ("every-core", "shared"):
                for how, run in (("back to back", back_to_back), ("concurrent", concurrent)):
                    times.setdefault((label, how), []).append(run(label))

    rows = []
    for label, title in (("every-core", "every core (before)"), ("shared", "shared (after)")):
        serial = median(times[(label, "back to back")])
        together = median(times[(label, "concurrent")])
        rows.append(f"| {title} | {serial:.2f} s | {together:.2f} s | {together / serial:.2f} |")
    command = (
        f"benchmarks/bench_concurrent.py --rows {args.rows} --features {args.features} "
        f"--rounds {args.rounds} --repeats {args.repeats} --write"
    )
    markdown = "\n".join(
        [
            f"## Three LightGBM retrains at once: {args.rows:,} rows x {args.features} features, "
            f"{args.rounds} rounds each",
            "",
            f"Command: `python {command}`",
            f"({machine()}; medians of {args.repeats} rounds, settings interleaved)",
            "",
            "| threads per retrain | back to back | concurrent | concurrent / back to back |",
            "|---|---|---|---|",
            *rows,
            "",
            "Target: concurrent at most 1.1x back to back.",
        ]
    )
    print(markdown)
    if args.write:
        update_section("bench_concurrent", markdown)


if __name__ == "__main__":
    main()
