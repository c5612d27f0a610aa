"""Each retrain's share of the host's cores: concurrent retrains must not oversubscribe them.

LightGBM gets `num_threads`, PyTorch `torch.set_num_threads`, and OpenMP and the BLAS their
`*_NUM_THREADS` variables, set before numpy or a trainer loads (they size their pools once).
Nothing here imports numpy.
"""

from __future__ import annotations

import os
from typing import Any

NATIVE_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def thread_share(hyperparameters: dict[str, Any], slots: int) -> int:
    """The threads one retrain may use: the job's own `num_threads` when it sets one (0: every
    core), else the host's cores over its retrain slots, at least 1, so that concurrent
    retrains do not oversubscribe the cores."""
    if "num_threads" in hyperparameters:
        return int(hyperparameters["num_threads"])
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) // max(1, slots))


def native_thread_environment(threads: int) -> dict[str, str]:
    """The variables that size OpenMP's and the BLAS's pools in a process started with them
    (the user's own values win)."""
    if threads < 1:
        return {}
    return {name: os.environ.get(name, str(threads)) for name in NATIVE_THREAD_VARIABLES}
