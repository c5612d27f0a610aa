"""The walk-through's commands with `--json`, outputs normalised, for before/after comparisons.

    .venv/bin/python benchmarks/walkthrough_json.py OUT.json        # run the cycle, write OUT.json
    .venv/bin/python benchmarks/walkthrough_json.py --compare A.json B.json

Runs every command of `examples/walkthrough.sh` (with `--json` where the command reports) in a
throwaway RETRAIN_HOME on SQLite and keeps each command's exit code and JSON document. What
differs from run to run is replaced by a placeholder: ids, times, durations, pids, hosts and
paths under the home. `--compare` prints the first differences and exits 1 when there are any,
so a refactoring that must not change what users see can be checked with two runs, one on each
side of the change.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?([+-]\d{2}:?\d{2}|Z)?")
# keys whose values change from run to run by nature
VOLATILE_KEYS = re.compile(
    r"(^|_)(id|ids|pid|host|hostname|seconds|duration|durations|elapsed|started_at|finished_at|"
    r"created_at|at|time|timestamp|heartbeat_at|expires_at|phases|lease|token|sha256|duration_s|waited_s|age_s|p50_s|p95_s|waiting_s)$"
)
# a version's directory carries its manifest's digest; a run's log its start and pid
DIGEST_DIR = re.compile(r"/(\d+)-[0-9a-f]{16}\b")
LOG_STAMP = re.compile(r"\d{8}T\d{6}Z-\d+")


def normalise(value: Any, home: str, key: str = "") -> Any:
    """Replace what differs between two runs of the same cycle by placeholders."""
    if key and VOLATILE_KEYS.search(key) and value is not None:
        return f"<{key}>"
    if isinstance(value, dict):
        return {k: normalise(v, home, k) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [normalise(v, home, key) for v in value]
    if isinstance(value, str):
        text = value.replace(home, "<home>").replace(str(ROOT), "<repo>")
        text = text.replace(socket.gethostname(), "<host>")
        text = LOG_STAMP.sub("<stamp>", DIGEST_DIR.sub(r"/\1-<digest>", text))
        return ISO_TIME.sub("<time>", text)
    if isinstance(value, float):
        return round(value, 6)
    return value


def run_cycle(cli: str) -> list[dict[str, Any]]:
    """Walk the cron cycle as the walk-through does, keeping every command's JSON."""
    home = tempfile.mkdtemp(prefix="retrain-walkthrough-json.")
    env = {
        k: v for k, v in os.environ.items() if k not in ("RETRAIN_DATABASE_URL", "RETRAIN_CONFIG")
    }
    env["RETRAIN_HOME"] = home
    data = ROOT / "examples" / "data"
    python = sys.executable
    jobs = sorted(str(p) for p in (ROOT / "examples" / "jobs").glob("*.yaml"))
    steps: list[list[str]] = [
        [python, "examples/generate_data.py", "--out", str(data)],
        [cli, "db", "init"],
        [cli, "jobs", "apply", *[a for j in jobs for a in ("-f", j)], "--json"],
        [cli, "jobs", "list", "--json"],
        [cli, "drift", "check", "--all", "--json"],
        [cli, "perf", "check", "--all", "--json"],
        [cli, "retrain", "fraud-lgbm", "--json"],
        [cli, "retrain", "demand-lstm", "--json"],
        [cli, "retrain", "churn-transformer", "--json"],
        [cli, "retrain", "alpha-ensemble", "--json"],
        [python, "examples/generate_data.py", "--out", str(data), "--phase", "drifted"],
        [cli, "drift", "check", "--all", "--json", "--report", f"{home}/drift.html"],
        [cli, "perf", "check", "--all", "--json"],
        [cli, "jobs", "trigger", "fraud-lgbm", "--reason", "walk-through"],
        [cli, "jobs", "due", "--json"],
        [cli, "jobs", "due", "--run", "--json"],
        [cli, "jobs", "list", "--json"],
        [cli, "versions", "list", "fraud", "--json"],
        [cli, "versions", "rollback", "fraud", "--reason", "walk-through"],
        [cli, "versions", "serving", "fraud", "--json"],
        [cli, "stats", "--json"],
        [cli, "report", "--out", f"{home}/report", "--json"],
    ]
    outputs = []
    for argv in steps:
        done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
        record: dict[str, Any] = {"command": argv[1:] if argv[0] == cli else argv[1:2]}
        record["exit"] = done.returncode
        if "--json" in argv:
            try:
                record["json"] = json.loads(done.stdout)
            except json.JSONDecodeError:
                record["stdout"] = done.stdout
        if done.returncode not in (0, 3):
            record["stderr"] = done.stderr
        outputs.append(normalise(record, home))
        if argv[1:3] == ["jobs", "due"] and "--run" in argv:
            for started in json.loads(done.stdout).get("started", []):
                while _alive(started["pid"]):
                    time.sleep(0.5)
    return outputs


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def differences(a: Any, b: Any, where: str = "") -> list[str]:
    """Where two normalised documents differ, as `path: a != b` lines."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b)):
            out += differences(a.get(key, "<missing>"), b.get(key, "<missing>"), f"{where}.{key}")
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [
            line
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for line in differences(x, y, f"{where}[{i}]")
        ]
    return [] if a == b else [f"{where}: {json.dumps(a)[:200]} != {json.dumps(b)[:200]}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path)
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("A", "B"))
    parser.add_argument("--cli", default=str(Path(sys.executable).with_name("retrain-cli")))
    args = parser.parse_args()
    if args.compare:
        a, b = (normalise(json.loads(p.read_text()), "<home>") for p in args.compare)
        found = differences(a, b)
        print("\n".join(found[:40]) or "identical, but for ids, times and paths")
        sys.exit(1 if found else 0)
    if args.out is None:
        parser.error("give OUT.json, or --compare A B")
    args.out.write_text(json.dumps(run_cycle(args.cli), indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
