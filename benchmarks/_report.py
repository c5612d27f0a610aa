"""Shared by the benchmarks: medians, peak memory of a child, and docs/benchmarks.md sections."""

from __future__ import annotations

import platform
import re
import statistics
import subprocess
import time
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
