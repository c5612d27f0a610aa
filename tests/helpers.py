"""Small data and job builders shared by the tests."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from retrain_cli.db.models import ModelVersionManagement


def window(
    n: int = 600, *, shift: float = 0.0, seed: int = 0, start: str = "2026-01-01"
) -> pd.DataFrame:
    """Two numeric features, one categorical, a label and a score."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "ts": pd.date_range(start, periods=n, freq="h", tz="UTC"),
            "f0": rng.normal(shift, 1, n),
            "f1": rng.exponential(1 + shift, n),
            "colour": rng.choice(["red", "green", "blue"], n, p=[0.5, 0.3, 0.2]),
        }
    )
    logit = 2 * frame["f0"] - 1
    frame["y"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    frame["score"] = 1 / (1 + np.exp(-(logit + rng.normal(0, 1, n) + shift * 3)))
    return frame


def write_job(folder: Path, name: str = "j1", **fields: Any) -> Path:
    """A job file named `name` in `folder`, fields over a small lightgbm default."""
    job = {
        "name": name,
        "model": fields.pop("model", f"{name}-model"),
        "type": "lightgbm",
        "data": {"train": "train.parquet", "reference": "ref.parquet", "current": "cur.parquet"},
        "target": "y",
        "time_column": "ts",
        "score_column": "score",
        **fields,
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(job))
    return path


def training_frame(n: int = 600, *, seed: int = 0, signal: float = 2.5) -> pd.DataFrame:
    """Time-ordered rows whose label a tree model learns well (AUC well above 0.8)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "ts": pd.date_range("2026-01-01", periods=n, freq="h", tz="UTC"),
            "f0": rng.normal(0, 1, n),
            "f1": rng.normal(0, 1, n),
            "f2": rng.normal(0, 1, n),
            "colour": rng.choice(["red", "green", "blue"], n),
        }
    )
    logit = signal * (frame["f0"] - 0.5 * frame["f1"]) + np.where(frame["colour"] == "red", 1, 0)
    frame["y"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame


def write_training_job(
    folder: Path, name: str = "j1", frame: pd.DataFrame | None = None, **fields: Any
) -> Path:
    """A lightgbm job over `folder/train.parquet` (written from `frame`)."""
    folder.mkdir(parents=True, exist_ok=True)
    (training_frame() if frame is None else frame).to_parquet(folder / "train.parquet")
    fields.setdefault("data", {"train": "train.parquet"})
    fields.setdefault("hyperparameters", {"num_boost_round": 30, "num_threads": 1})
    fields.setdefault("thresholds", {"performance": 0.7})
    return write_job(folder, name, **fields)


def lagged_frame(n: int = 600, *, seed: int = 0, lag: int = 3) -> pd.DataFrame:
    """A sequence task: the label depends on f0 `lag` periods ago (invisible in a single row)."""
    rng = np.random.default_rng(seed)
    f0 = rng.normal(0, 1, n + lag)
    frame = pd.DataFrame(
        {
            "ts": pd.date_range("2026-01-01", periods=n, freq="h", tz="UTC"),
            "f0": f0[lag:],
            "f1": rng.normal(0, 1, n),
        }
    )
    logit = 3.0 * f0[:-lag]
    frame["y"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return frame


SMALL_SEQUENCE = {
    "sequence_length": 6,
    "hidden_size": 8,
    "d_model": 8,
    "nhead": 2,
    "max_epochs": 4,
    "batch_size": 32,
    "learning_rate": 0.01,
}


def published(home: Path, model: str, version: int) -> Path:
    """The one directory version `version` of `model` was published to."""
    (found,) = (home / "artifacts" / model).glob(f"{version}-*")
    return found


def register_versions(session: Any, model: str, count: int) -> None:
    """`count` registered versions of `model`: rows only, no files (for what skips the
    preflight, or never reaches it)."""
    now = datetime.now(UTC)
    with session() as s:
        for number in range(1, count + 1):
            s.add(
                ModelVersionManagement(
                    model_name=model,
                    version=number,
                    model_type="lightgbm",
                    status="registered",
                    artifact_path=f"/nowhere/{number}/manifest.json",
                    sha256="0" * 64,
                    size_bytes=0,
                    metrics={},
                    hyperparameters={},
                    data_fingerprint={},
                    created_at=now,
                )
            )


def retrain_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`retrain-cli ARGS` in a process of its own, as another host's cron would run it."""
    return subprocess.run(
        [sys.executable, "-m", "retrain_cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


class StoreGate:
    """A real HTTP proxy on 127.0.0.1 in front of the S3 server, which a test turns into a store
    that fails: from its `after`-th write under a key containing `refuse`, it answers 403
    AccessDenied to writes and deletes; a write under a key containing `hold` waits (`arrived` is
    set) until `released` is, and is then dropped: the writer was killed in the middle of an
    upload, and what it had not sent never reaches the store."""

    def __init__(self, upstream: str) -> None:
        import http.client
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import urlsplit

        self.refuse: str | None = None
        self.after = 0
        self.hold: str | None = None
        self.arrived, self.released = threading.Event(), threading.Event()
        self.writes: list[str] = []  # the keys written through the gate, in order
        gate, target = self, urlsplit(upstream)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _body(self) -> bytes:
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    data = b""
                    while size := int(self.rfile.readline().split(b";")[0], 16):
                        data += self.rfile.read(size)
                        self.rfile.readline()
                    self.rfile.readline()
                    return data
                return self.rfile.read(int(self.headers.get("Content-Length") or 0))

            def _forward(self) -> None:
                body = self._body()
                writing = self.command in ("PUT", "POST", "DELETE")
                if writing and self.command == "PUT":
                    gate.writes.append(self.path)
                if writing and gate.refuse and gate.refuse in self.path:
                    gate.after -= 1
                    if gate.after < 0:
                        return self._answer(403, _ACCESS_DENIED, {})
                if self.command == "PUT" and gate.hold and gate.hold in self.path:
                    gate.arrived.set()
                    gate.released.wait()
                    return self._answer(503, b"", {})
                connection = http.client.HTTPConnection(
                    str(target.hostname), target.port, timeout=60
                )
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() != "transfer-encoding"
                }
                headers["Content-Length"] = str(len(body))
                connection.request(self.command, self.path, body=body, headers=headers)
                answer = connection.getresponse()
                data = answer.read()
                passed = {k: v for k, v in answer.getheaders() if k.lower() != "transfer-encoding"}
                connection.close()
                self._answer(answer.status, data, passed)

            def _answer(self, status: int, data: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    if name.lower() not in ("content-length", "connection", "server", "date"):
                        self.send_header(name, value)
                length = headers.get("Content-Length", headers.get("content-length"))
                head = self.command == "HEAD" and length is not None
                self.send_header("Content-Length", str(length) if head else str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


_ACCESS_DENIED = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>'
    b"<Message>writes are refused</Message></Error>"
)
