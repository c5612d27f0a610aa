import json
import math
import random
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from retrain_cli.db.models import (
    AutoRetrainingJob,
    ModelDriftMonitoring,
    ModelPerformanceTracking,
    RetrainingJobHistory,
)
from tests.conftest import Cli
from tests.helpers import write_training_job

SessionFactory = Callable[[], AbstractContextManager[Session]]
NOW = datetime(2026, 6, 30, tzinfo=UTC)


def nearest_rank(values: list[float], level: int) -> float:
    ordered = sorted(values)
    return ordered[math.ceil(level / 100 * len(ordered)) - 1]


def test_stats_json_matches_counts_computed_here(
    cli: Cli, tmp_path: Path, session: SessionFactory
) -> None:
    for name in ("a", "b"):
        assert (
            cli("jobs", "apply", "-f", str(write_training_job(tmp_path / name, name))).exit_code
            == 0
        )
    rng = random.Random(3)
    expected: dict[str, dict] = {}  # type: ignore[type-arg]
    with session() as s:
        jobs = {j.name: j for j in s.scalars(select(AutoRetrainingJob))}
        for name, job in jobs.items():
            counts: dict[str, int] = {}
            durations = []
            for _ in range(rng.randint(15, 40)):
                status = rng.choice(["succeeded"] * 5 + ["failed", "skipped", "abandoned"])
                started = NOW - timedelta(days=rng.uniform(0, 10))
                duration = round(rng.uniform(1, 100), 3)
                s.add(
                    RetrainingJobHistory(
                        job_id=job.id,
                        trigger="scheduled",
                        status=status,
                        host="h",
                        pid=1,
                        started_at=started,
                        finished_at=started + timedelta(seconds=duration),
                        duration_s=duration,
                    )
                )
                if started >= NOW - timedelta(days=7):
                    counts[status] = counts.get(status, 0) + 1
                    if status in ("succeeded", "failed"):
                        durations.append(duration)
            finished = (
                counts.get("succeeded", 0) + counts.get("failed", 0) + counts.get("abandoned", 0)
            )
            expected[name] = {
                "runs": counts,
                "success_rate": counts.get("succeeded", 0) / finished,
                "p50_s": nearest_rank(durations, 50),
                "p95_s": nearest_rank(durations, 95),
            }
        for days, drifted in ((1, True), (2, True), (3, False), (9, True)):
            s.add(
                ModelDriftMonitoring(
                    check_id=f"d{days}",
                    job_id=jobs["a"].id,
                    model_name="a-model",
                    checked_at=NOW - timedelta(days=days),
                    scope="dataset",
                    method="psi",
                    statistic=0.5,
                    threshold=0.25,
                    drifted=drifted,
                    drift_share=0.6,
                    n_reference=1,
                    n_current=1,
                    metrics={},
                )
            )
        s.add(
            ModelPerformanceTracking(
                check_id="p1",
                job_id=jobs["b"].id,
                model_name="b-model",
                checked_at=NOW - timedelta(days=1),
                metric="auc",
                value=0.5,
                is_primary=True,
                degraded=True,
                n_samples=100,
                n_dropped=0,
            )
        )
    result = cli("stats", "--since", "7d", "--now", NOW.isoformat(), "--json")
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    by_job = {j["job"]: j for j in document["jobs"]}
    for name, wanted in expected.items():
        got = by_job[name]
        assert got["runs"] == wanted["runs"]
        assert got["success_rate"] == wanted["success_rate"]
        assert got["p50_s"] == wanted["p50_s"] and got["p95_s"] == wanted["p95_s"]
    assert (by_job["a"]["drift_alerts"], by_job["a"]["degradations"]) == (2, 0)
    assert (by_job["b"]["drift_alerts"], by_job["b"]["degradations"]) == (0, 1)
    total_runs = {
        k: expected["a"]["runs"].get(k, 0) + expected["b"]["runs"].get(k, 0)
        for k in set(expected["a"]["runs"]) | set(expected["b"]["runs"])
    }
    assert document["totals"]["runs"] == total_runs
    assert document["slots_in_use"] == 0
    assert by_job["a"]["next_fire"] == "2026-06-30T02:00:00+00:00"


def test_stats_renders_for_people(cli: Cli) -> None:
    result = cli("stats")
    assert result.exit_code == 0 and "retrain slots in use: 0" in result.stdout
