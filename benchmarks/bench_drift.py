"""Drift check at scale: `retrain-cli drift check` end to end against a per-column scipy loop.

    .venv/bin/python benchmarks/bench_drift.py [--rows 1000000] [--repeats 3] [--write]

Seeded data: ROWS reference and ROWS current rows, 20 numeric and 5 categorical columns (10-50
categories). Timed side by side in one run:
  (a) `retrain-cli drift check --model ... --reference ... --current ...` as a child process
      (start-up, Parquet loading, the statistics, SQLite writes), three ways: the default (psi
      decides, no column is sorted), with Evidently's default method, and `--all-statistics`;
  (b) a plain per-column scipy loop computing the same statistics on preloaded arrays;
  (c) Evidently's default DataDriftPreset, only when `evidently` is importable.
(a) runs once untimed first (the Parquet files were just written; (b) gets preloaded data).
Reports medians, the ratio of `--all-statistics` to (b), and the peak RSS of (a).
`--write` updates docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine, median, timed_run, timed_run_rss, update_section

N_NUMERIC, N_CATEGORICAL = 20, 5


def make_data(rows: int, seed: int, shift: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {
        f"num{i}": rng.normal(shift * (i % 3), 1 + 0.1 * i, rows) for i in range(N_NUMERIC)
    }
    for i in range(N_CATEGORICAL):
        k = 10 + 10 * i
        categories = np.array([f"c{j}" for j in range(k)])
        weights = rng.dirichlet(np.ones(k))
        data[f"cat{i}"] = pd.Categorical(rng.choice(categories, rows, p=weights))
    return pd.DataFrame(data)


def scipy_loop(ref: pd.DataFrame, cur: pd.DataFrame) -> None:
    """The straightforward way: each column on its own, scipy for every statistic."""
    from scipy.spatial.distance import jensenshannon
    from scipy.stats import chi2_contingency, entropy, ks_2samp, wasserstein_distance

    def proportions(p: np.ndarray, q: np.ndarray) -> None:
        pe, qe = np.where(p == 0, 1e-4, p), np.where(q == 0, 1e-4, q)
        np.sum((qe - pe) * np.log(qe / pe))
        entropy(pe, qe)
        jensenshannon(pe, qe)
        np.sqrt(0.5 * np.sum((np.sqrt(p) - np.sqrt(q)) ** 2))

    for column in ref.columns:
        if column.startswith("num"):
            r, c = ref[column].to_numpy(), cur[column].to_numpy()
            r, c = r[~np.isnan(r)], c[~np.isnan(c)]
            edges = np.concatenate(
                ([-np.inf], np.unique(np.quantile(r, np.arange(1, 10) / 10)), [np.inf])
            )
            p = np.histogram(r, edges)[0] / r.size
            q = np.histogram(c, edges)[0] / c.size
            proportions(p, q)
            ks_2samp(r, c)
            wasserstein_distance(r, c) / max(np.std(r), 0.001)
        else:
            counts = pd.concat([ref[column].value_counts(), cur[column].value_counts()], axis=1)
            table = counts.fillna(0).to_numpy().T
            proportions(table[0] / table[0].sum(), table[1] / table[1].sum())
            chi2_contingency(table, correction=False)


EVIDENTLY_SNIPPET = """
import sys, time
import pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset
ref, cur = pd.read_parquet(sys.argv[1]), pd.read_parquet(sys.argv[2])
start = time.perf_counter()
Report([DataDriftPreset()]).run(reference_data=ref, current_data=cur)
seconds = time.perf_counter() - start
import resource
print(seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def evidently_run(python: str, ref: Path, cur: Path) -> tuple[float, float] | None:
    """Evidently's default data-drift preset on the same files, in `python` (Evidently 0.7 needs
    pandas < 3, so it usually lives in its own environment). Returns (seconds of Report.run on
    preloaded frames, peak RSS in MB of that process), or None when it cannot run."""
    import subprocess

    done = subprocess.run(
        [python, "-c", EVIDENTLY_SNIPPET, str(ref), str(cur)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        print(f"evidently did not run: {done.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    seconds, peak_mb = done.stdout.strip().splitlines()[-1].split()
    return float(seconds), float(peak_mb)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    parser.add_argument(
        "--evidently-python", help="a Python with evidently 0.7 installed, to time it too"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ref, cur = make_data(args.rows, 1, 0.0), make_data(args.rows, 2, 0.3)
        ref.to_parquet(folder / "ref.parquet")
        cur.to_parquet(folder / "cur.parquet")
        env = {**os.environ, "RETRAIN_HOME": str(folder / "home")}
        cli = [sys.executable, "-m", "retrain_cli"]
        assert timed_run([*cli, "db", "init", "--quiet"], env)[1] == 0
        check = [
            *cli,
            "drift",
            "check",
            "--model",
            "bench",
            "--quiet",
            "--reference",
            str(folder / "ref.parquet"),
            "--current",
            str(folder / "cur.parquet"),
        ]

        variants = {
            "default (`psi` decides; binned statistics only, nothing sorted)": [],
            "`--method wasserstein_norm` (Evidently's default method for large numeric data)": [
                "--method",
                "wasserstein_norm",
            ],
            "`--all-statistics` (every statistic of the scipy loop)": ["--all-statistics"],
        }
        # one untimed run first: the files were just written, and the loop's data is preloaded
        assert timed_run(check, env)[1] in (0, 3)
        ours: dict[str, list[float]] = {name: [] for name in variants}
        loop, rss_mb = [], []
        for _ in range(args.repeats):  # interleaved, so load drifts hit all alike
            for name, extra in variants.items():
                seconds, code, peak_mb = timed_run_rss([*check, *extra], env)
                assert code in (0, 3), f"drift check exited {code}"
                ours[name].append(seconds)
                rss_mb.append(peak_mb)
            start = time.perf_counter()
            scipy_loop(ref, cur)
            loop.append(time.perf_counter() - start)
        rss = max(rss_mb)
        evidently = None
        if args.evidently_python:
            files = (folder / "ref.parquet", folder / "cur.parquet")
            evidently = evidently_run(args.evidently_python, *files)

    default, sorted_like_evidently, every = (median(times) for times in ours.values())
    if evidently:
        evidently_row = (
            f"| Evidently 0.7 DataDriftPreset, `Report.run` only (one run) | {evidently[0]:.2f} s "
            f"| {evidently[0] / default:.0f}x the time of our default, "
            f"{evidently[0] / sorted_like_evidently:.0f}x of ours with its method; "
            f"peak RSS {evidently[1]:.0f} MB |"
        )
    else:
        evidently_row = "| Evidently DataDriftPreset | not installed in this environment | — |"
    rows, cols = f"{args.rows:,}", f"{N_NUMERIC} numeric + {N_CATEGORICAL} categorical"
    command = f"benchmarks/bench_drift.py --rows {args.rows} --repeats {args.repeats} --write"
    if args.evidently_python:
        command += " --evidently-python PATH"
    markdown = "\n".join(
        [
            f"## Drift check: {rows} + {rows} rows, {cols} columns",
            "",
            f"Command: `python {command}`",
            f"({machine()}; medians of {args.repeats} interleaved runs)",
            "",
            "| what | median | note |",
            "|---|---|---|",
            *(
                f"| `retrain-cli drift check`, {name}, end to end | {median(times):.2f} s "
                f"| runs {', '.join(f'{t:.2f}' for t in times)} s |"
                for name, times in ours.items()
            ),
            f"| peak RSS of any of them | {rss:.0f} MB | target under 1.5 GB |",
            f"| per-column scipy loop, statistics only (data preloaded) | {median(loop):.2f} s | |",
            f"| ratio ours (`--all-statistics`) / scipy loop | {every / median(loop):.2f} "
            "| target at most 0.25 |",
            evidently_row,
        ]
    )
    print(markdown)
    if args.write:
        update_section("bench_drift", markdown)


if __name__ == "__main__":
    main()
