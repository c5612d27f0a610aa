"""Data and versions in a bucket beside the same on local disk: a retrain and drift checks.

    .venv/bin/python benchmarks/bench_object_store.py [--rows 500000] [--repeats 3] [--write]

The bucket is moto's S3 server on 127.0.0.1 (a process of its own): the figures are the
overhead of reading through fsspec and s3fs and of the S3 protocol over loopback, not of a
network. The same Parquet files are written to a temporary directory and to the bucket, and
the bucket's side keeps its versions and profiles there too (`artifacts_dir: s3://...`, so a
retrain uploads, reads back and caches its version):
a training window of ROWS rows x 20 features, and reference and current windows of ROWS rows
(20 numeric columns). Each command is a `retrain-cli` child process; medians of REPEATS,
local and bucket interleaved.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine, median, timed_run, update_section
from bench_retrain import make_data

ENV = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def window(rows: int, seed: int, shift: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({f"f{i}": rng.normal(shift * (i % 2), 1, rows) for i in range(20)})


def start_server() -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.1)
    return server, f"http://127.0.0.1:{port}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    server, endpoint = start_server()
    os.environ.update(ENV, AWS_ENDPOINT_URL=endpoint)
    try:
        results = run(args.rows, args.repeats)
    finally:
        server.kill()
    lines = [
        f"## Data and versions in a bucket: {args.rows:,} rows, moto's S3 server on loopback "
        "(issue #38)",
        "",
        f"`benchmarks/bench_object_store.py --rows {args.rows}`; {machine()}; median of "
        f"{args.repeats} child processes each, local and bucket interleaved. The bucket is "
        "moto's S3 server on 127.0.0.1: the difference is the store layer's overhead (fsspec, "
        "s3fs, the S3 protocol), not a network's; moto is a Python server holding the objects "
        "in memory, so its own throughput is part of it. The profile mode reads each row group "
        "by coalesced range requests as it streams (pyarrow's pre-buffering: 2.2x before it), "
        "the exact mode the file whole. On the bucket's side the versions and profiles are in "
        "the bucket too: a retrain uploads its version, reads it back before registering it, "
        "and scores the champion from this host's verified copy.",
        "",
        "| command | local disk | bucket | ratio |",
        "|---|---|---|---|",
    ]
    for what, (local, bucket) in results.items():
        lines.append(f"| {what} | {local:.2f} s | {bucket:.2f} s | {bucket / local:.2f}x |")
    text = "\n".join(lines)
    print(text)
    if args.write:
        update_section("object-store", text)


def run(rows: int, repeats: int) -> dict[str, tuple[float, float]]:
    import s3fs

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        bucket = "s3://retrain-bench"
        s3fs.S3FileSystem().mkdir("retrain-bench")
        frames = {
            "train.parquet": make_data(rows, 20),
            "ref.parquet": window(rows, 1, 0.0),
            "cur.parquet": window(rows, 2, 0.2),
        }
        for name, frame in frames.items():
            frame.to_parquet(folder / name, index=False)
            frame.to_parquet(f"{bucket}/{name}", index=False)
        jobs = []
        for where, prefix in (("local", str(folder)), ("bucket", bucket)):
            for mode in ("exact", "profile"):
                name = f"{where}-{mode}"
                jobs.append(name)
                job = {
                    "name": name,
                    "model": name,
                    "type": "lightgbm",
                    "strategy": "full",
                    "data": {
                        "train": f"{prefix}/train.parquet",
                        "reference": f"{prefix}/ref.parquet",
                        "current": f"{prefix}/cur.parquet",
                    },
                    "target": "y",
                    "time_column": "ts",
                    "features": [f"f{i}" for i in range(20)],
                    "drift": {"mode": mode},
                    "thresholds": {"performance": 0.5},
                    "gate": {"min_improvement": -1.0},
                    "hyperparameters": {"num_boost_round": 50, "num_threads": 0},
                }
                (folder / f"{name}.yaml").write_text(yaml.safe_dump(job))
        database = f"sqlite:///{folder / 'retrain.db'}"
        envs = {}
        for where in ("local", "bucket"):
            home = folder / f"home-{where}"
            home.mkdir()
            if where == "bucket":
                (home / "config.yaml").write_text(f"artifacts_dir: {bucket}/artifacts\n")
            envs[where] = {
                **os.environ,
                "RETRAIN_HOME": str(home),
                "RETRAIN_DATABASE_URL": database,
            }
        cli = [sys.executable, "-m", "retrain_cli"]
        assert timed_run([*cli, "db", "init", "--quiet"], envs["local"])[1] == 0
        files = [arg for name in jobs for arg in ("-f", str(folder / f"{name}.yaml"))]
        assert timed_run([*cli, "jobs", "apply", *files, "--quiet"], envs["local"])[1] == 0
        for where, env in envs.items():  # the profile built once, as cron would have it
            assert timed_run([*cli, "drift", "profile", f"{where}-profile", "-q"], env)[1] == 0
        commands = {
            "`retrain` (LightGBM, 20 features, 50 rounds)": ("retrain", "{}-exact", "--force"),
            "`drift check`, exact mode": ("drift", "check", "{}-exact"),
            "`drift check`, profile mode (the current window streamed)": (
                "drift",
                "check",
                "{}-profile",
            ),
        }
        results = {}
        for what, argv in commands.items():
            times: dict[str, list[float]] = {"local": [], "bucket": []}
            for _ in range(repeats):
                for where in ("local", "bucket"):
                    args = [a.format(where) for a in argv]
                    seconds, code = timed_run([*cli, *args, "--quiet"], envs[where])
                    assert code in (0, 3), f"{args} exited {code}"
                    times[where].append(seconds)
            results[what] = (median(times["local"]), median(times["bucket"]))
        return results


if __name__ == "__main__":
    main()
