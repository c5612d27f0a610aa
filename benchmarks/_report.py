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


def timed_run_rss(argv: list[str], env: dict[str, str]) -> tuple[float, int, float]:
    """Wall seconds, exit code and peak resident set (MB) of one child process."""
    import os

    start = time.perf_counter()
    child = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    return seconds, child.returncode, usage.ru_maxrss / 1024


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
