"""Start-up: what a command costs before it does any work, against the imports it cannot avoid.

    .venv/bin/python benchmarks/bench_startup.py [--repeats 15]

Fresh processes, interleaved, on one machine; medians. Measured side by side:
`python -c "import typer, sqlalchemy.orm"` (the floor of any command that reads the database),
`retrain-cli --version`, `retrain-cli --help`, the shell completion of job names (as bash asks
for it, with two jobs in the database) and `retrain-cli jobs due` on an empty database.
Targets: `--version` under 0.3 s, completion under 0.5 s, `jobs due` within 1.5x of the floor.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode not in (0, 3):
        raise SystemExit(f"{argv} failed: {done.stderr.decode()[-500:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    cli = [sys.executable, "-m", "retrain_cli"]
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder) / "home"
        env = {**os.environ, "RETRAIN_HOME": str(home)}
        env.pop("RETRAIN_DATABASE_URL", None)
        subprocess.run([*cli, "db", "init", "-q"], env=env, check=True)
        empty = {**env, "RETRAIN_HOME": str(Path(folder) / "empty")}
        subprocess.run([*cli, "db", "init", "-q"], env=empty, check=True)
        for name in ("fraud-lgbm", "demand-lstm"):
            job = ROOT / "examples" / "jobs" / f"{name}.yaml"
            subprocess.run([*cli, "jobs", "apply", "-f", str(job), "-q"], env=env, check=True)
        completion = {
            **env,
            "_RETRAIN_CLI_COMPLETE": "complete_bash",
            "COMP_WORDS": "retrain-cli retrain fr",
            "COMP_CWORD": "2",
        }
        cases = {
            "import typer, sqlalchemy.orm": (
                [sys.executable, "-c", "import typer, sqlalchemy.orm"],
                env,
            ),
            "retrain-cli --version": ([*cli, "--version"], env),
            "retrain-cli --help": ([*cli, "--help"], env),
            "completion of job names": (cli, completion),
            "retrain-cli jobs due (empty database)": ([*cli, "jobs", "due", "-q"], empty),
        }
        times: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(args.repeats):
            for name, (argv, environment) in cases.items():
                times[name].append(timed(argv, environment))
    floor = statistics.median(times["import typer, sqlalchemy.orm"])
    print(f"{'case':40} {'median s':>9} {'x floor':>8}")
    for name, samples in times.items():
        median = statistics.median(samples)
        print(f"{name:40} {median:9.3f} {median / floor:8.2f}")


if __name__ == "__main__":
    main()
