"""`jobs due` at scale, and its start-up cost.

    .venv/bin/python benchmarks/bench_due.py [--jobs 10000] [--history 1000000] [--repeats 5]
                                             [--pg postgresql+psycopg2://postgres@127.0.0.1/postgres]
                                             [--write]

1. On SQLite and on PostgreSQL (a throwaway database created on the --pg server and dropped),
   load JOBS jobs, HISTORY history rows, and drift, performance and version rows, then time
   `retrain-cli jobs due --json` as a new process (median of REPEATS). Target: under 1 s.
2. Side by side in the same run: `retrain-cli jobs due` on an empty database against
   `python -c "import typer, sqlalchemy.orm"`. Target: within 1.5x.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import random
import sqlite3
import sys
import tempfile
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import initialised_postgresql, machine, median, median_run, timed_run, update_section

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
SCHEDULES = ["0 2 * * *", "0 3 * * *", "*/30 * * * *", "0 * * * *", "15 4 * * 1-5"]
ZONES = ["UTC", "Europe/London", "America/New_York", "Asia/Tokyo"]


def spec(name: str) -> dict[str, object]:
    return {
        "name": name,
        "model": name,
        "type": "lightgbm",
        "data": {"train": {"path": "/x"}},
        "target": "y",
        "time_column": "ts",
        "features": None,
        "categorical": [],
        "score_column": "score",
        "return_column": None,
        "thresholds": {},
        "hyperparameters": {},
        "members": [],
        "triggers": ["scheduled", "drift", "performance", "age", "manual"],
        "retry_backoff": 1800,
        "drift": {},
        "performance": {},
        "gate": {},
        "timeout": 3600,
        "holdout_fraction": 0.2,
    }


def rows(n_jobs: int, n_history: int, seed: int = 0) -> dict[str, list[tuple[object, ...]]]:
    """Every table's rows as tuples, in the column order of `COLUMNS`."""
    rng = random.Random(seed)
    stamp = lambda days: (NOW - timedelta(days=days)).isoformat()  # noqa: E731
    jobs, history, drift, perf, versions = [], [], [], [], []
    for i in range(1, n_jobs + 1):
        name = f"job-{i:05d}"
        last = rng.uniform(0, 3)
        status = rng.choice(["succeeded"] * 8 + ["failed", "running"])
        jobs.append(
            (
                i,
                name,
                name,
                "lightgbm",
                True,
                rng.choice(SCHEDULES),
                rng.choice(ZONES),
                rng.randint(0, 10),
                "auc",
                3600,
                json.dumps(spec(name)["triggers"]),
                json.dumps(spec(name)),
                stamp(last),
                status,
                stamp(400),
                stamp(400),
            )
        )
        versions.append(
            (
                i,
                name,
                1,
                "lightgbm",
                "active",
                "/a",
                "0" * 64,
                1,
                "{}",
                "{}",
                "{}",
                stamp(rng.uniform(0, 60)),
            )
        )
        if rng.random() < 0.5:
            drift.append(
                (
                    i,
                    uuid.uuid4().hex,
                    name,
                    stamp(rng.uniform(0, 2)),
                    "dataset",
                    "psi",
                    0.1,
                    0.25,
                    rng.random() < 0.2,
                    0.1,
                    100,
                    100,
                    "{}",
                )
            )
            perf.append(
                (
                    i,
                    uuid.uuid4().hex,
                    name,
                    stamp(rng.uniform(0, 2)),
                    "auc",
                    0.8,
                    True,
                    rng.random() < 0.1,
                    100,
                    0,
                )
            )
    for i in range(1, n_history + 1):
        job = rng.randint(1, n_jobs)
        started = rng.uniform(3, 365)
        history.append(
            (
                i,
                job,
                "scheduled",
                rng.choice(["succeeded"] * 9 + ["failed"]),
                "host-a",
                1000,
                stamp(started),
                stamp(started - 0.01),
            )
        )
    return {
        "auto_retraining_jobs": jobs,
        "retraining_job_history": history,
        "model_drift_monitoring": drift,
        "model_performance_tracking": perf,
        "model_version_management": versions,
    }


COLUMNS = {
    "auto_retraining_jobs": "id, name, model_name, model_type, enabled, schedule, timezone, "
    "priority, primary_metric, timeout_s, triggers, spec, last_run_at, last_run_status, "
    "created_at, updated_at",
    "retraining_job_history": "id, job_id, trigger, status, host, pid, started_at, finished_at",
    "model_drift_monitoring": "job_id, check_id, model_name, checked_at, scope, method, "
    "statistic, threshold, drifted, drift_share, n_reference, n_current, metrics",
    "model_performance_tracking": "job_id, check_id, model_name, checked_at, metric, value, "
    "is_primary, degraded, n_samples, n_dropped",
    "model_version_management": "job_id, model_name, version, model_type, status, "
    "artifact_path, sha256, size_bytes, metrics, hyperparameters, data_fingerprint, created_at",
}


def load_sqlite(path: Path, data: dict[str, list[tuple[object, ...]]]) -> None:
    connection = sqlite3.connect(path)
    for table, values in data.items():
        marks = ", ".join("?" * len(values[0]))
        # SQLite keeps timestamps as text without an offset, as SQLAlchemy writes them
        values = [
            tuple(
                v.replace("+00:00", "") if isinstance(v, str) and v.endswith("+00:00") else v
                for v in row
            )
            for row in values
        ]
        connection.executemany(f"INSERT INTO {table} ({COLUMNS[table]}) VALUES ({marks})", values)
    connection.commit()
    connection.close()


def load_postgresql(url: str, data: dict[str, list[tuple[object, ...]]]) -> None:
    import psycopg2
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    connection = psycopg2.connect(
        host=parsed.host,
        port=parsed.port or 5432,
        user=parsed.username,
        password=parsed.password,
        dbname=parsed.database,
    )
    with connection, connection.cursor() as cursor:
        for table, values in data.items():
            buffer = io.StringIO()
            csv.writer(buffer).writerows(values)
            buffer.seek(0)
            cursor.copy_expert(f"COPY {table} ({COLUMNS[table]}) FROM STDIN WITH CSV", buffer)
        cursor.execute("SELECT setval('auto_retraining_jobs_id_seq', 1000000)")
        cursor.execute("ANALYZE")
    connection.close()


def time_due(env: dict[str, str], url: str, repeats: int) -> float:
    argv = [
        sys.executable,
        "-m",
        "retrain_cli",
        "jobs",
        "due",
        "--now",
        NOW.isoformat(),
        "--json",
        "--database-url",
        url,
    ]
    return median_run(argv, env, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--history", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--pg", default="postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()

    data = rows(args.jobs, args.history)
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "RETRAIN_HOME": str(Path(tmp) / "home")}
        cli = [sys.executable, "-m", "retrain_cli"]
        sqlite_url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        assert timed_run([*cli, "db", "init", "-q", "--database-url", sqlite_url], env)[1] == 0
        load_sqlite(Path(tmp) / "bench.db", data)
        results["sqlite"] = time_due(env, sqlite_url, args.repeats)

        with initialised_postgresql(args.pg, env) as pg_url:
            load_postgresql(pg_url, data)
            results["postgresql"] = time_due(env, pg_url, args.repeats)

        empty_url = f"sqlite:///{Path(tmp) / 'empty.db'}"
        assert timed_run([*cli, "db", "init", "-q", "--database-url", empty_url], env)[1] == 0
        imports, empty = [], []
        for _ in range(args.repeats):  # interleaved
            imports.append(
                timed_run([sys.executable, "-c", "import typer, sqlalchemy.orm"], env)[0]
            )
            empty.append(timed_run([*cli, "jobs", "due", "--database-url", empty_url], env)[0])

    ratio = median(empty) / median(imports)
    command = (
        f"benchmarks/bench_due.py --jobs {args.jobs} --history {args.history} "
        f"--repeats {args.repeats} --write"
    )
    markdown = "\n".join(
        [
            f"## `jobs due`: {args.jobs:,} jobs, {args.history:,} history rows",
            "",
            f"Command: `python {command}`",
            f"({machine()}; medians of {args.repeats} runs, each a new process)",
            "",
            "| what | median | target |",
            "|---|---|---|",
            f"| `retrain-cli jobs due --json` on SQLite | {results['sqlite']:.2f} s | < 1 s |",
            f"| `retrain-cli jobs due --json` on PostgreSQL | {results['postgresql']:.2f} s "
            "| < 1 s |",
            f'| `python -c "import typer, sqlalchemy.orm"` | {median(imports):.3f} s | |',
            f"| `retrain-cli jobs due` on an empty database | {median(empty):.3f} s | "
            f"{ratio:.2f}x the imports (target within 1.5x) |",
        ]
    )
    print(markdown)
    if args.write:
        update_section("bench_due", markdown)


if __name__ == "__main__":
    main()
