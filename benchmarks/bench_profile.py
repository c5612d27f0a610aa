"""Drift checks against a stored reference profile: speed, memory and accuracy.

    .venv/bin/python benchmarks/bench_profile.py [--rows 1000000] [--big-rows 50000000]
        [--repeats 3] [--write]

Three parts, each side by side in one run:
  1. ROWS current rows x 25 columns (20 numeric, 5 categorical) against a ROWS reference:
     `retrain-cli drift check JOB` as a child process in the exact mode and against a profile
     built beforehand by `drift profile` (psi decides; then --all-statistics-like jobs, where
     every numeric column also gets KS and Wasserstein: sorts in the exact mode, sketches in
     the profile mode). Medians of REPEATS and the ratio profile / exact.
  2. BIG_ROWS current rows as a Parquet dataset (files of 1M rows) against a profile of a 1M-row
     reference: the profile-mode check's wall time and peak RSS, beside DuckDB computing the
     same per-bin and per-category counts over the same files (`pip install duckdb`; skipped
     when it is missing). Needs about 170 bytes of disk per row.
  3. Accuracy: generated windows with known shifts (normal, ties, NaN, heavy tails; no shift,
     small, large): the decisions of both modes for psi, wasserstein_norm and ks_pvalue, and
     the KS difference against the stated bound.
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
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine, median, timed_run, timed_run_rss, update_section
from bench_drift import N_CATEGORICAL, N_NUMERIC, make_data

CLI = [sys.executable, "-m", "retrain_cli"]
NOW = pd.Timestamp("2026-06-01T12:00:00Z").to_pydatetime()


def write_jobs(folder: Path, current: str, jobs: dict[str, dict[str, object]]) -> Path:
    specs = [
        {
            "name": name,
            "model": "bench",
            "type": "lightgbm",
            "data": {"train": "ref.parquet", "reference": "ref.parquet", "current": current},
            "target": "y",
            "drift": drift,
        }
        for name, drift in jobs.items()
    ]
    path = folder / "jobs.yaml"
    path.write_text(yaml.safe_dump({"jobs": specs}))
    return path


def side_by_side(rows: int, repeats: int) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_data(rows, 1, 0.0).to_parquet(folder / "ref.parquet")
        make_data(rows, 2, 0.3).to_parquet(folder / "cur.parquet")
        env = {**os.environ, "RETRAIN_HOME": str(folder / "home")}
        jobs = {
            "exact": {"mode": "exact"},
            "profile": {"mode": "profile"},
            "exact-all": {"mode": "exact", "all_statistics": True},
            "profile-all": {"mode": "profile", "all_statistics": True},
        }
        jobs_file = write_jobs(folder, "cur.parquet", jobs)
        assert timed_run([*CLI, "db", "init", "--quiet"], env)[1] == 0
        assert timed_run([*CLI, "jobs", "apply", "-f", str(jobs_file)], env)[1] == 0
        built, code = timed_run([*CLI, "drift", "profile", "profile", "profile-all"], env)
        assert code == 0
        work = in_process(folder, repeats)
        times: dict[str, list[float]] = {name: [] for name in jobs}
        for name in jobs:  # once untimed: the files were just written
            timed_run([*CLI, "drift", "check", name, "--quiet"], env)
        for _ in range(repeats):
            for name in jobs:
                seconds, code = timed_run([*CLI, "drift", "check", name, "--quiet"], env)
                assert code in (0, 3), (name, code)
                times[name].append(seconds)
    m = {name: median(t) for name, t in times.items()}
    return (
        f"{rows:,} reference and {rows:,} current rows, {N_NUMERIC} numeric + {N_CATEGORICAL} "
        f"categorical columns; `drift check JOB` end to end, median of {repeats}:\n\n"
        "| statistics | exact mode | profile mode | profile / exact |\n|---|---|---|---|\n"
        f"| psi decides (binned only) | {m['exact']:.2f} s | {m['profile']:.2f} s "
        f"| {m['profile'] / m['exact']:.2f}x |\n"
        f"| all_statistics (KS, Wasserstein) | {m['exact-all']:.2f} s | {m['profile-all']:.2f} s "
        f"| {m['profile-all'] / m['exact-all']:.2f}x |\n\n"
        f"Building the two profiles once (`drift profile`, both jobs): {built:.2f} s. The same "
        "checks in one process after its imports (what the check itself costs, without the "
        "interpreter's start-up and the ~1.5 s of imports both modes pay), median of "
        f"{repeats}: exact {work['exact']:.2f} s, profile {work['profile']:.2f} s "
        f"({work['profile'] / work['exact']:.2f}x); with all statistics exact "
        f"{work['exact-all']:.2f} s, profile {work['profile-all']:.2f} s "
        f"({work['profile-all'] / work['exact-all']:.2f}x).\n"
    )


def in_process(folder: Path, repeats: int) -> dict[str, float]:
    """The check's own work, timed inside this process once everything is imported: both
    windows read and compared, against the profile read (and verified) and the current window
    streamed."""
    import hashlib

    from retrain_cli.compute import local
    from retrain_cli.data.columns import Columns
    from retrain_cli.data.sources import file_source
    from retrain_cli.drift import compare, profile_check, profile_store

    ref, cur = file_source(folder / "ref.parquet"), file_source(folder / "cur.parquet")
    columns = Columns(features=None)
    times: dict[str, list[float]] = {}
    for all_statistics in (False, True):
        settings = compare.DriftSettings(threshold=0.1, all_statistics=all_statistics)
        built = local.LOCAL.profile(ref, columns, settings.bins)
        path = folder / f"profile-{all_statistics}.json"
        path.write_bytes(profile_store.encode(built))
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        suffix = "-all" if all_statistics else ""
        for _ in range(repeats + 1):  # the first run warms the page cache and imports
            start = time.perf_counter()
            windows = compare.load_windows(ref, cur)
            compare.compare_windows(*windows, columns, settings, model="m", job=None, now=NOW)
            exact = time.perf_counter() - start
            start = time.perf_counter()
            profile = profile_store.read(path, digest, "")
            profile_check.compare_with_profile(
                profile, {}, cur, columns, settings, "", model="m", job=None, now=NOW
            )
            profiled = time.perf_counter() - start
            times.setdefault(f"exact{suffix}", []).append(exact)
            times.setdefault(f"profile{suffix}", []).append(profiled)
    return {name: median(t[1:]) for name, t in times.items()}


def duckdb_counts(files: str, edges: dict[str, list[float]], categorical: list[str]) -> float:
    """DuckDB computing the same per-bin and per-category counts over the same files."""
    import duckdb

    aggregates = []
    for column, cuts in edges.items():
        index = " + ".join(f"({column} >= {cut!r})::INT" for cut in cuts)
        aggregates.extend(
            f"count_if(({index}) = {b} AND {column} IS NOT NULL AND NOT isnan({column}))"
            for b in range(len(cuts) + 1)
        )
    connection = duckdb.connect()
    start = time.perf_counter()
    connection.execute(f"SELECT {', '.join(aggregates)} FROM read_parquet('{files}')").fetchall()
    for column in categorical:
        connection.execute(
            f"SELECT {column}, count(*) FROM read_parquet('{files}') GROUP BY 1"
        ).fetchall()
    return time.perf_counter() - start


def big_window(rows: int) -> str:
    from retrain_cli.drift.profile_store import read

    per_file = 1_000_000
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_data(per_file, 1, 0.0).to_parquet(folder / "ref.parquet")
        (folder / "cur").mkdir()
        for part in range(max(1, rows // per_file)):
            make_data(per_file, 100 + part, 0.3).to_parquet(folder / "cur" / f"{part:04d}.parquet")
        env = {**os.environ, "RETRAIN_HOME": str(folder / "home")}
        jobs = {
            "big": {"mode": "profile"},
            "big-all": {"mode": "profile", "all_statistics": True},
        }
        jobs_file = write_jobs(folder, "cur/", jobs)
        assert timed_run([*CLI, "db", "init", "--quiet"], env)[1] == 0
        assert timed_run([*CLI, "jobs", "apply", "-f", str(jobs_file)], env)[1] == 0
        assert timed_run([*CLI, "drift", "profile", "big"], env)[1] == 0
        assert timed_run([*CLI, "drift", "profile", "big-all"], env)[1] == 0
        counted, code, rss = timed_run_rss([*CLI, "drift", "check", "big", "--quiet"], env)
        assert code in (0, 3)
        sketched, code, rss_all = timed_run_rss([*CLI, "drift", "check", "big-all", "--quiet"], env)
        assert code in (0, 3)
        duck = None
        try:
            import duckdb  # noqa: F401
        except ImportError:
            print("duckdb is not installed: its column is left out", file=sys.stderr)
        else:
            profiles = sorted((folder / "home" / "artifacts" / "bench" / "profiles").glob("big-*"))
            import hashlib

            data = profiles[0].read_bytes()
            profile = read(profiles[0], hashlib.sha256(data).hexdigest(), "")
            edges = {n: c.edges for n, c in profile.columns.items() if c.kind == "numeric"}
            categorical = [n for n, c in profile.columns.items() if c.kind == "categorical"]
            duck = duckdb_counts(str(folder / "cur" / "*.parquet"), edges, categorical)
    duck_cell = f"{duck:.1f} s" if duck is not None else "not run"
    ratio = f"{counted / duck:.2f}x" if duck is not None else "-"
    return (
        f"A {rows:,}-row current window (a Parquet dataset of 1M-row files, {N_NUMERIC} numeric + "
        f"{N_CATEGORICAL} categorical columns) against the profile of a 1M-row reference, one "
        "run each:\n\n"
        "| what | wall | peak RSS |\n|---|---|---|\n"
        f"| `drift check` (psi: per-bin and per-category counts) | {counted:.1f} s "
        f"| {rss:.0f} MB |\n"
        f"| `drift check` with all_statistics (KLL sketches too) | {sketched:.1f} s "
        f"| {rss_all:.0f} MB |\n"
        f"| DuckDB, the same counts over the same files | {duck_cell} | - |\n\n"
        f"Counting against DuckDB: {ratio}.\n"
    )


def _case(kind: str, n: int, seed: int, shift: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    if kind == "ties":
        x = np.round(rng.normal(shift, 1, n), 1)
    elif kind == "heavy tails":
        x = rng.standard_t(1.5, n) + shift
    elif kind == "NaN":
        x = rng.normal(shift, 1, n)
        x[rng.random(n) < 0.2] = np.nan
    else:
        x = rng.normal(shift, 1, n)
    return pd.DataFrame({"x": x})


def accuracy(rows: int) -> str:
    import pyarrow as pa

    from retrain_cli.compute import local
    from retrain_cli.data import summary as window_summary
    from retrain_cli.data.columns import Columns
    from retrain_cli.drift import compare

    lines = [
        f"{rows:,} reference and {rows:,} current rows per case; decisions of psi (0.1), "
        "wasserstein_norm (0.1) and ks_pvalue (alpha 0.05):\n",
        "| case | shift | exact KS | profile KS - exact | stated bound | decisions equal |",
        "|---|---|---|---|---|---|",
    ]
    worst = 0.0
    for kind in ("normal", "ties", "NaN", "heavy tails"):
        for shift in (0.0, 0.01, 0.05, 0.5):
            ref = pa.Table.from_pandas(_case(kind, rows, 1, 0.0))
            cur = pa.Table.from_pandas(_case(kind, rows, 2, shift))
            columns = Columns(features=["x"])
            base = compare.DriftSettings(threshold=0.1, all_statistics=True)
            profile = local.profile_table(ref, columns, base.bins, "reference window")
            summary = window_summary.WindowSummary(profile, ["x"], ordered=True)
            for batch in cur.to_batches(max_chunksize=1 << 16):
                summary.add(batch)
            metrics, _ = summary.compare("x")
            same = True
            for method in ("psi", "wasserstein_norm", "ks_pvalue"):
                settings = base.model_copy(update={"method": method})
                exact = compare.compare_windows(
                    ref, cur, columns, settings, model="m", job=None, now=NOW
                ).features[0]
                from retrain_cli.statistics import drift

                approx = drift.decide(metrics, method, settings.threshold, settings.alpha)
                same &= approx.drifted == exact.drifted
            difference = metrics["ks_stat"] - exact.metrics["ks_stat"]
            bound = metrics["approximate"]["ks_stat"]
            worst = max(worst, abs(difference) / bound if bound else 0.0)
            lines.append(
                f"| {kind} | {shift} | {exact.metrics['ks_stat']:.5f} | {difference:+.5f} "
                f"| {bound:.5f} | {'yes' if same else '**no**'} |"
            )
    lines.append(f"\nLargest KS difference: {worst:.0%} of the stated bound.\n")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--big-rows", type=int, default=50_000_000)
    parser.add_argument("--accuracy-rows", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    parts = [side_by_side(args.rows, args.repeats)]
    print(parts[-1], flush=True)
    if args.big_rows:
        parts.append(big_window(args.big_rows))
        print(parts[-1], flush=True)
    parts.append(accuracy(args.accuracy_rows))
    print(parts[-1], flush=True)
    if args.write:
        command = (
            f"`.venv/bin/python benchmarks/bench_profile.py --rows {args.rows} "
            f"--big-rows {args.big_rows} --repeats {args.repeats}` on {machine()}."
        )
        update_section(
            "profile",
            "## Drift checks against a reference profile\n\n" + "\n".join([command, "", *parts]),
        )


if __name__ == "__main__":
    main()
