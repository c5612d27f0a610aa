"""Shared by the benchmarks: medians, peak memory of a child, and docs/benchmarks.md sections."""

from __future__ import annotations

import contextlib
import platform
import re
import statistics
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def timed_run(argv: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Wall seconds and exit code of one child process."""
    start = time.perf_counter()
    code = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, check=False).returncode
    return time.perf_counter() - start, code


_LAUNCHER = (
    "import resource, subprocess, sys; "
    "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode; "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, code)"
)


def timed_run_rss(argv: list[str], env: dict[str, str]) -> tuple[float, int, float]:
    """Wall seconds, exit code and peak resident set (MB) of one child process.

    The child is started by a small launcher: on Linux a process forked from this one (which
    holds the benchmark's data) would start with this one's peak in its `ru_maxrss`.
    """
    import sys

    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _LAUNCHER, *argv], env=env, capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    peak_kb, code = done.stdout.split()
    return seconds, int(code), int(peak_kb) / 1024


def median(values: list[float]) -> float:
    return statistics.median(values)


def machine() -> str:
    import os

    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def update_section(name: str, markdown: str, path: Path = DOC) -> None:
    """Replace (or append) the section between `<!-- name -->` and `<!-- /name -->`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = path.read_text() if path.exists() else "# Benchmarks\n\n"
    block = f"<!-- {name} -->\n{markdown.strip()}\n<!-- /{name} -->"
    pattern = re.compile(rf"<!-- {name} -->.*?<!-- /{name} -->", re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else f"{text}\n{block}\n"
    path.write_text(text)


def median_run(argv: list[str], env: dict[str, str], repeats: int) -> float:
    """The median wall seconds of `repeats` runs of a command that must exit 0."""
    times = []
    for _ in range(repeats):
        seconds, code = timed_run(argv, env)
        assert code == 0, f"{' '.join(argv[2:4])} exited {code}"
        times.append(seconds)
    return median(times)


@contextlib.contextmanager
def initialised_postgresql(admin_url: str, env: dict[str, str]) -> Iterator[str]:
    """A throwaway database on the server of `admin_url`, after `db init`: its URL; dropped
    after the block."""
    import sys
    import uuid

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"retrain_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        init = [sys.executable, "-m", "retrain_cli", "db", "init", "-q", "--database-url", url]
        assert timed_run(init, env)[1] == 0
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
