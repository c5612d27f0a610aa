"""Each retrain takes a share of the host's cores: three at once on three slots each use
cores // 3 threads (at least 1), read back from the runs and from LightGBM's own model files;
a job's own `num_threads` wins."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from retrain_cli.core.threads import thread_share, usable_cores
from tests.conftest import Cli
from tests.helpers import write_training_job

CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@pytest.mark.parametrize(("slots", "expected"), [(3, max(1, CORES // 3)), (1, CORES)])
def test_the_share_is_the_cores_over_the_slots_and_the_jobs_own_setting_wins(
    slots: int, expected: int
) -> None:
    assert thread_share({}, slots) == expected
    assert thread_share({"num_threads": 7}, slots) == 7
    assert thread_share({"num_threads": 0}, slots) == 0  # LightGBM's every core


@pytest.mark.slow
def test_three_concurrent_retrains_each_use_their_share(
    tmp_path: Path, home: Path, db_url: str
) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.yaml").write_text(yaml.safe_dump({"max_concurrent_retrains": 3}))
    env = {**os.environ, "RETRAIN_HOME": str(home), "RETRAIN_DATABASE_URL": db_url}
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env.pop(name, None)
    own = {"num_boost_round": 20, "num_threads": 2}
    jobs = {
        "a": write_training_job(tmp_path / "a", "a", hyperparameters={"num_boost_round": 20}),
        "b": write_training_job(tmp_path / "b", "b", hyperparameters={"num_boost_round": 20}),
        "c": write_training_job(tmp_path / "c", "c", hyperparameters=own),
    }

    def command(*args: str) -> list[str]:
        return [sys.executable, "-m", "retrain_cli", *args]

    for path in jobs.values():
        subprocess.run(command("jobs", "apply", "-f", str(path)), env=env, check=True)
    running = [
        subprocess.Popen(command("retrain", name, "--json"), env=env, stdout=subprocess.PIPE)
        for name in jobs
    ]
    results = [json.loads(process.communicate(timeout=300)[0]) for process in running]
    share = max(1, CORES // 3)
    assert [r["threads"] for r in results] == [share, share, 2]
    for result in results:
        model = (Path(result["version"]["artifact"]) / "model.txt").read_text()
        assert f"[num_threads: {result['threads']}]" in model  # what LightGBM really used


def test_a_retrain_limits_the_openmp_and_blas_pools_of_the_thread_that_trains(
    cli: Cli, db_url: str, tmp_path: Path
) -> None:
    import numpy  # noqa: F401  (its BLAS pool is one of those limited)
    from threadpoolctl import threadpool_info

    from retrain_cli.core.settings import load_settings
    from retrain_cli.db.session import make_engine
    from retrain_cli.trainers.base import FakeTrainer
    from retrain_cli.training.runner import Hooks, RetrainRequest, retrain

    seen: list[int] = []

    class Recording(FakeTrainer):
        def fit(self, data: Any, context: Any, init_from: Any = None) -> Recording:
            seen.extend(pool["num_threads"] for pool in threadpool_info())  # in the training thread
            return super().fit(data, context, init_from)  # type: ignore[return-value]

    job = write_training_job(tmp_path, hyperparameters={"num_threads": 1})
    assert cli("jobs", "apply", "-f", str(job)).exit_code == 0
    engine = make_engine(db_url)
    try:
        hooks = Hooks(trainer_factory=lambda kind, hp: Recording())
        retrain(engine, load_settings(db_url), RetrainRequest("j1"), hooks)
    finally:
        engine.dispose()
    assert seen and set(seen) == {1}
    if CORES > 1:  # the limit ends with the run
        assert any(pool["num_threads"] > 1 for pool in threadpool_info())


@pytest.mark.parametrize(
    ("files", "limit"),
    [
        ({"cpu.max": "200000 100000\n"}, 2),  # cgroup v2: a Kubernetes limits.cpu of 2
        ({"cpu.max": "150000 100000\n"}, 2),  # 1.5 CPUs: rounded up
        ({"cpu.max": "max 100000\n"}, None),  # no limit
        ({"cpu/cpu.cfs_quota_us": "100000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 1),  # v1
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
        ({}, None),  # not in a container
    ],
)
def test_usable_cores_are_capped_by_the_containers_cpu_limit(
    tmp_path: Path, files: dict[str, str], limit: int | None
) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    affinity = len(os.sched_getaffinity(0))
    assert usable_cores(tmp_path) == (affinity if limit is None else min(affinity, limit))
