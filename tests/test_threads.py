"""Each retrain takes a share of the host's cores: three at once on three slots each use
cores // 3 threads (at least 1), read back from the runs and from LightGBM's own model files;
a job's own `num_threads` wins."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from retrain_cli.core.threads import thread_share
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
