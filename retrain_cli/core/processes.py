"""Whether a process of this host is alive: runs, staging directories and slots left by a dead one
are swept."""

from __future__ import annotations

import os


def pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
