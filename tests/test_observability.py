"""Prometheus textfile and notifications, against real local HTTP and SMTP servers."""

import hashlib
import hmac
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Cli
from tests.helpers import training_frame, window, write_job, write_training_job


def unused_port() -> int:
    """A local port that nothing listens on (the OS handed it out and it was closed again)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[tuple[int, list[Any]]]:
    """A real SMTP server (aiosmtpd) on loopback, recording every message."""
    from aiosmtpd.controller import Controller

    messages: list[Any] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            messages.append(envelope)
            return "250 OK"

    port = unused_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    yield port, messages
    controller.stop()


def configure(home: Path, monkeypatch: pytest.MonkeyPatch, document: dict[str, Any]) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.yaml").write_text(yaml.safe_dump(document))


@pytest.mark.slow
def test_metrics_textfile_parses_and_tracks_the_pipeline(
    cli: Cli, tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RETRAIN_METRICS_DIR", str(tmp_path / "textfile"))
    frame = training_frame()
    frame["score"] = 0.9 * frame["y"] + 0.05
    frame.to_parquet(tmp_path / "preds.parquet")
    path = write_training_job(
        tmp_path, data={"train": "train.parquet", "predictions": "preds.parquet"}
    )
    assert cli("jobs", "apply", "-f", str(path)).exit_code == 0
    assert cli("retrain", "j1").exit_code == 0
    assert cli("perf", "check", "j1").exit_code == 0
    text = (tmp_path / "textfile" / "retrain_cli.prom").read_text()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("retrain_model_active_version", (("model", "j1-model"),))] == 1
    assert (
        samples[("retrain_job_last_run_status", (("retrain_job", "j1"), ("status", "succeeded")))]
        == 1
    )
    assert samples[("retrain_job_last_success_timestamp_seconds", (("retrain_job", "j1"),))] > 1.7e9
    assert samples[("retrain_job_last_run_duration_seconds", (("retrain_job", "j1"),))] > 0
    assert (
        samples[
            (
                "retrain_model_primary_metric",
                (("better", "higher"), ("metric", "auc"), ("model", "j1-model")),
            )
        ]
        == 1.0
    )
    assert samples[("retrain_job_expected_interval_seconds", (("retrain_job", "j1"),))] == 86400
    assert samples[("retrain_job_consecutive_failures", (("retrain_job", "j1"),))] == 0
    auc = (("metric", "auc"), ("model", "j1-model"))
    threshold = (("better", "higher"), *auc)
    assert samples[("retrain_model_primary_metric_threshold", threshold)] == 0.7
    assert samples[("retrain_model_degraded", auc)] == 0
    assert samples[("retrain_slots_in_use", ())] == 0
    assert not list((tmp_path / "textfile").glob("*.tmp*"))


def test_drift_sends_signed_json_and_slack_webhooks(
    cli: Cli,
    tmp_path: Path,
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
    webhook: tuple[str, list[dict[str, Any]]],
) -> None:
    url, received = webhook
    configure(
        home,
        monkeypatch,
        {
            "notifications": {
                "secret": "s3cret",
                "targets": [{"webhook": f"{url}/hook"}, {"slack": f"{url}/slack"}],
            }
        },
    )
    window(seed=1).to_parquet(tmp_path / "ref.parquet")
    window(seed=2, shift=1.5).to_parquet(tmp_path / "cur.parquet")
    assert cli("jobs", "apply", "-f", str(write_job(tmp_path, "j1"))).exit_code == 0
    assert cli("drift", "check", "j1").exit_code == 3
    assert sorted(r["path"] for r in received) == ["/hook", "/slack"]
    hook = next(r for r in received if r["path"] == "/hook")
    document = json.loads(hook["body"])
    assert (document["event"], document["job"], document["model"]) == (
        "drift_detected",
        "j1",
        "j1-model",
    )
    expected = hmac.new(b"s3cret", hook["body"], hashlib.sha256).hexdigest()
    assert hook["headers"]["X-Retrain-Signature"] == f"sha256={expected}"
    slack = json.loads(next(r for r in received if r["path"] == "/slack")["body"])
    assert slack["text"].startswith("[retrain-cli] drift in j1")


def test_a_failed_retrain_emails_the_jobs_target(
    cli: Cli,
    tmp_path: Path,
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
    smtp: tuple[int, list[Any]],
) -> None:
    port, messages = smtp
    configure(
        home,
        monkeypatch,
        {"notifications": {"smtp": {"host": "127.0.0.1", "port": port, "from": "ml@example.com"}}},
    )
    path = write_training_job(tmp_path, notify=[{"email": "oncall@example.com"}])
    assert cli("jobs", "apply", "-f", str(path)).exit_code == 0
    (tmp_path / "train.parquet").unlink()
    assert cli("retrain", "j1").exit_code == 1
    (message,) = messages
    assert message.rcpt_tos == ["oncall@example.com"]
    assert b"Subject: [retrain-cli] retrain of j1 failed" in message.content


@pytest.mark.slow
def test_an_unreachable_target_is_logged_and_never_fails_the_command(
    cli: Cli, tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = unused_port()
    configure(
        home,
        monkeypatch,
        {"notifications": {"timeout": 2, "targets": [{"webhook": f"http://127.0.0.1:{dead}/x"}]}},
    )
    assert cli("jobs", "apply", "-f", str(write_training_job(tmp_path))).exit_code == 0
    assert cli("retrain", "j1").exit_code == 0  # promoted: a notification is attempted
    log = (home / "logs" / "notifications.log").read_text()
    assert "version_promoted -> webhook" in log and "Connection refused" in log
    assert (home / "logs" / "notifications.log").stat().st_mode & 0o777 == 0o600


@pytest.mark.slow
def test_the_notification_log_never_shows_a_webhook_token(
    cli: Cli, tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = unused_port()
    token = "T000/B000/s3cr3t-t0ken"
    configure(
        home,
        monkeypatch,
        {
            "notifications": {
                "timeout": 2,
                "targets": [{"slack": f"http://127.0.0.1:{dead}/{token}"}],
            }
        },
    )
    assert cli("jobs", "apply", "-f", str(write_training_job(tmp_path))).exit_code == 0
    assert cli("retrain", "j1").exit_code == 0
    log = (home / "logs" / "notifications.log").read_text()
    assert f"-> slack http://127.0.0.1:{dead}/***" in log
    assert "s3cr3t" not in log
