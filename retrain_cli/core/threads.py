"""Each retrain's share of the host's cores: concurrent retrains must not oversubscribe them.

LightGBM gets `num_threads`, PyTorch `torch.set_num_threads`, and the OpenMP and BLAS pools of the
libraries loaded in the process a limit set by threadpoolctl, for the thread that trains (an
OpenMP limit holds for the thread that sets it). Nothing here imports numpy.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def thread_share(hyperparameters: dict[str, Any], slots: int) -> int:
    """The threads one retrain may use: the job's own `num_threads` when it sets one (0: every
    core), else the host's cores over its retrain slots, at least 1, so that concurrent
    retrains do not oversubscribe the cores."""
    if "num_threads" in hyperparameters:
        return int(hyperparameters["num_threads"])
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) // max(1, slots))


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
