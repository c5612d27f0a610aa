"""Each retrain's share of the host's cores: concurrent retrains must not oversubscribe them.

LightGBM gets `num_threads`, PyTorch `torch.set_num_threads`, and the OpenMP and BLAS pools of the
libraries loaded in the process a limit set by threadpoolctl, for the thread that trains (an
OpenMP limit holds for the thread that sets it). Nothing here imports numpy.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CGROUP = Path("/sys/fs/cgroup")  # a container's own cgroup, as the container sees it


def usable_cores(cgroup: Path = CGROUP) -> int:
    """The cores this process may use: its CPU affinity, capped by its container's CPU limit
    (cgroup v2 `cpu.max`, v1 `cpu.cfs_quota_us`; a Kubernetes `limits.cpu`), rounded up. A
    pod limited to 2 CPUs on a 64-core node sees 64 cores in its affinity and may use 2."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    quota = _quota(cgroup)
    return max(1, min(cores or 1, math.ceil(quota) if quota else cores or 1))


def _quota(cgroup: Path) -> float | None:
    """CPUs of the CFS quota (None: no limit, or no cgroup file to read)."""
    try:
        limit, period = (cgroup / "cpu.max").read_text().split()[:2]
        return None if limit == "max" else int(limit) / int(period)
    except (OSError, ValueError):
        pass
    try:
        limit = (cgroup / "cpu" / "cpu.cfs_quota_us").read_text().strip()
        period = (cgroup / "cpu" / "cpu.cfs_period_us").read_text().strip()
        return None if int(limit) <= 0 else int(limit) / int(period)
    except (OSError, ValueError):
        return None


def thread_share(hyperparameters: dict[str, Any], slots: int) -> int:
    """The threads one retrain may use: the job's own `num_threads` when it sets one (0: every
    core), else the usable cores over the retrain slots, at least 1, so that concurrent
    retrains do not oversubscribe the cores."""
    if "num_threads" in hyperparameters:
        return int(hyperparameters["num_threads"])
    return max(1, usable_cores() // max(1, slots))


@contextmanager
def limited(threads: int) -> Iterator[None]:
    """The OpenMP and BLAS pools at `threads` while the block runs in this thread (0: every
    core, unchanged)."""
    if threads < 1:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads):
        yield
