"""`retrain-cli report` over a year of hourly checks of 50 models.

    .venv/bin/python benchmarks/bench_report.py [--models 50] [--days 365] [--features 10]
                                                [--repeats 3] [--pg URL] [--write]

On SQLite and on PostgreSQL (a throwaway database created on the --pg server and dropped), load
MODELS jobs with DAYS of hourly drift checks (FEATURES feature rows, a prediction row and a
dataset row each), hourly performance checks (the primary metric and three others), a daily
retrain, a version a week with its promotion; then time `retrain-cli report --since DAYSd` as
a new process (median of REPEATS) and weigh the pages it writes. Target: seconds, not minutes.
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
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import initialised_postgresql, machine, median, median_run, timed_run, update_section

NOW = datetime(2026, 6, 1, tzinfo=UTC)
COLUMNS = {
    "auto_retraining_jobs": "id, name, model_name, model_type, enabled, schedule, timezone, "
    "priority, primary_metric, triggers, spec, last_run_at, last_run_status, created_at, "
    "updated_at",
    "model_drift_monitoring": "job_id, check_id, model_name, checked_at, scope, feature, method, "
    "statistic, threshold, drifted, drift_share, n_reference, n_current, metrics",
    "model_performance_tracking": "job_id, check_id, model_name, checked_at, metric, value, "
    "threshold, baseline, is_primary, degraded, n_samples, n_dropped",
    "retraining_job_history": "job_id, trigger, status, host, pid, started_at, finished_at, "
    "duration_s, error",
    "model_version_management": "job_id, model_name, version, model_type, status, "
    "artifact_path, sha256, size_bytes, parent_version, metrics, hyperparameters, "
    "data_fingerprint, created_at, promoted_at",
    "model_version_events": "model_name, event, from_version, to_version, actor, reason, at",
}


def stamp(at: datetime) -> str:
    return at.isoformat()


def model_rows(
    i: int, days: int, features: int, rng: random.Random
) -> Iterator[tuple[str, list[tuple[object, ...]]]]:
    """One model's rows, table by table (a model at a time keeps memory flat)."""
    name = f"model-{i:03d}"
    start = NOW - timedelta(days=days)
    spec = {"name": name, "model": name, "type": "lightgbm", "triggers": ["scheduled"]}
    yield (
        "auto_retraining_jobs",
        [
            (
                i,
                name,
                name,
                "lightgbm",
                True,
                "0 2 * * *",
                "UTC",
                0,
                "auc",
                json.dumps(["scheduled", "drift", "performance", "age", "manual"]),
                json.dumps(spec),
                stamp(NOW - timedelta(hours=22)),
                "succeeded",
                stamp(start),
                stamp(start),
            )
        ],
    )
    drift, perf = [], []
    for hour in range(days * 24):
        at = stamp(start + timedelta(hours=hour))
        check = uuid.uuid4().hex
        shifted = rng.random() < 0.05
        drifted = 0
        for f in range(features):
            psi = rng.uniform(0, 0.1) + (0.3 if shifted and f < 6 else 0.0)
            drifted += psi >= 0.2
            drift.append(
                (i, check, name, at, "feature", f"f{f}", "psi", psi, 0.2, psi >= 0.2, None)
            )
        drift.append(
            (i, check, name, at, "prediction", "score", "ks_pvalue", 0.3, 0.05, False, None)
        )
        share = drifted / features
        drift.append((i, check, name, at, "dataset", None, "psi", share, 0.2, share >= 0.5, share))
        perf_check = uuid.uuid4().hex
        for metric, primary in (
            ("auc", True),
            ("f1", False),
            ("precision", False),
            ("recall", False),
        ):
            value = rng.uniform(0.8, 0.9)
            perf.append(
                (i, perf_check, name, at, metric, value, 0.7, 0.88, primary, False, 1000, 0)
            )
    yield (
        "model_drift_monitoring",
        [(*row, 1000, 1000, json.dumps({"required_share": 0.5})) for row in drift],
    )
    yield "model_performance_tracking", perf
    runs = []
    for day in range(days):
        started = start + timedelta(days=day, hours=2)
        failed = rng.random() < 0.03
        seconds = rng.uniform(20, 90)
        runs.append(
            (
                i,
                "scheduled",
                "failed" if failed else "succeeded",
                "host-a",
                1000,
                stamp(started),
                stamp(started + timedelta(seconds=seconds)),
                seconds,
                "training data has 3 rows, fewer than 30" if failed else None,
            )
        )
    yield "retraining_job_history", runs
    versions, events = [], []
    weeks = days // 7
    for week in range(1, weeks + 1):
        created = start + timedelta(days=7 * week - 6)
        status = "active" if week == weeks else "retired"
        versions.append(
            (
                i,
                name,
                week,
                "lightgbm",
                status,
                f"/models/{name}/{week}",
                "0" * 64,
                1,
                week - 1 or None,
                json.dumps({"auc": 0.88}),
                "{}",
                "{}",
                stamp(created),
                stamp(created),
            )
        )
        events.append((name, "promote", week - 1 or None, week, "cron", "gate", stamp(created)))
    yield "model_version_management", versions
    yield "model_version_events", events


def sqlite_value(value: object) -> object:
    # SQLite keeps timestamps as text without an offset, as SQLAlchemy writes them
    return (
        value.replace("+00:00", "")
        if isinstance(value, str) and value.endswith("+00:00")
        else value
    )


def load_sqlite(path: Path, models: int, days: int, features: int) -> int:
    connection = sqlite3.connect(path)
    rng, count = random.Random(0), 0
    for i in range(1, models + 1):
        for table, values in model_rows(i, days, features, rng):
            if not values:  # fewer days than a week: no version
                continue
            marks = ", ".join("?" * len(values[0]))
            connection.executemany(
                f"INSERT INTO {table} ({COLUMNS[table]}) VALUES ({marks})",
                [tuple(sqlite_value(v) for v in row) for row in values],
            )
            count += len(values)
    connection.commit()
    connection.execute("ANALYZE")
    connection.close()
    return count


def load_postgresql(url: str, models: int, days: int, features: int) -> None:
    import psycopg2
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    connection = psycopg2.connect(
        host=parsed.host, port=parsed.port or 5432, user=parsed.username, dbname=parsed.database
    )
    rng = random.Random(0)
    with connection, connection.cursor() as cursor:
        for i in range(1, models + 1):
            for table, values in model_rows(i, days, features, rng):
                buffer = io.StringIO()
                csv.writer(buffer).writerows(values)
                buffer.seek(0)
                cursor.copy_expert(f"COPY {table} ({COLUMNS[table]}) FROM STDIN WITH CSV", buffer)
        cursor.execute("SELECT setval('auto_retraining_jobs_id_seq', 100000)")
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    connection.close()


def time_report(env: dict[str, str], url: str, out: Path, days: int, repeats: int) -> float:
    argv = [
        sys.executable,
        "-m",
        "retrain_cli",
        "report",
        "--out",
        str(out),
        "--since",
        f"{days}d",
        "--now",
        NOW.isoformat(),
        "--database-url",
        url,
    ]
    return median_run(argv, env, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--features", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--pg", default="postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()

    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "RETRAIN_HOME": str(Path(tmp) / "home")}
        cli = [sys.executable, "-m", "retrain_cli"]
        sqlite_url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        assert timed_run([*cli, "db", "init", "-q", "--database-url", sqlite_url], env)[1] == 0
        rows = load_sqlite(Path(tmp) / "bench.db", args.models, args.days, args.features)
        out = Path(tmp) / "report"
        results["sqlite"] = time_report(env, sqlite_url, out, args.days, args.repeats)
        sizes = sorted(p.stat().st_size for p in out.glob("model-*.html"))
        index_size = (out / "index.html").stat().st_size

        with initialised_postgresql(args.pg, env) as pg_url:
            load_postgresql(pg_url, args.models, args.days, args.features)
            results["postgresql"] = time_report(
                env, pg_url, Path(tmp) / "report-pg", args.days, args.repeats
            )

    command = (
        f"benchmarks/bench_report.py --models {args.models} --days {args.days} "
        f"--features {args.features} --repeats {args.repeats} --write"
    )
    per_model = results["sqlite"] / args.models
    markdown = "\n".join(
        [
            f"## `report`: {args.models} models, {args.days} days of hourly checks",
            "",
            f"Command: `python {command}`",
            f"({machine()}; {rows:,} rows in the tables; medians of {args.repeats} runs, each a "
            "new process writing every page)",
            "",
            "| what | median | target |",
            "|---|---|---|",
            f"| `retrain-cli report --since {args.days}d` on SQLite | {results['sqlite']:.1f} s "
            f"({per_model:.2f} s a model) | seconds |",
            f"| `retrain-cli report --since {args.days}d` on PostgreSQL "
            f"| {results['postgresql']:.1f} s | seconds |",
            f"| a model's page | {median(sizes) / 1024:.0f} KB (largest {sizes[-1] / 1024:.0f} KB) "
            "| |",
            f"| the index | {index_size / 1024:.0f} KB | |",
        ]
    )
    print(markdown)
    if args.write:
        update_section("bench_report", markdown)


if __name__ == "__main__":
    main()
