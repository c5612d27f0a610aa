"""Notifications: webhooks (generic JSON or Slack-compatible) and email, on the events operators
act on. Sent after the command's transaction committed, each with a timeout; a failed send is
appended to `$RETRAIN_HOME/logs/notifications.log` and never fails the command.

Targets come from the config file (`notifications.targets`) and from each job (`notify`):
    {webhook: URL}            JSON body {"event", "job", "model", "summary", "details", "at"}
    {slack: URL}              Slack-compatible body {"text": summary}
    {email: ADDRESS}          through `notifications.smtp: {host, port, from}`
A `notifications.secret` signs every webhook body: header `X-Retrain-Signature: sha256=<hex
HMAC-SHA256 of the body>`.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from retrain_cli.core import paths
from retrain_cli.core.errors import one_line
from retrain_cli.core.private import append_line
from retrain_cli.core.redaction import redact_webhook, scrub
from retrain_cli.core.serialize import jsonable

EVENTS = (
    "retrain_failed",
    "drift_detected",
    "performance_degraded",
    "version_promoted",
    "rollback",
    "rollout_step",
    "rollout_aborted",
)
DEFAULT_TIMEOUT_S = 5.0
SIGNATURE_HEADER = "X-Retrain-Signature"


@dataclass(frozen=True)
class Event:
    kind: str
    summary: str
    at: datetime
    job: str | None = None
    model: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def document(self) -> dict[str, Any]:
        return {
            "event": self.kind,
            "job": self.job,
            "model": self.model,
            "summary": self.summary,
            "details": jsonable(self.details),
            "at": self.at.isoformat(),
        }


class Notifier:
    """Sends events to the configured targets plus each event's own (the job's)."""

    def __init__(self, config: Mapping[str, Any], log_dir: Path) -> None:
        self.targets = list(config.get("targets") or [])
        self.secret = config.get("secret")
        self.smtp = dict(config.get("smtp") or {})
        self.timeout = float(config.get("timeout", DEFAULT_TIMEOUT_S))
        self.log = paths.log_file(log_dir, "notifications.log")

    def send(self, event: Event, extra_targets: Iterable[Mapping[str, str]] = ()) -> int:
        """Deliver `event` to every target; return how many deliveries succeeded."""
        delivered = 0
        for target in [*self.targets, *extra_targets]:
            try:
                self._deliver(event, target)
                delivered += 1
            except Exception as exc:  # a notification must never fail the command
                self._record_failure(event, target, exc)
        return delivered

    def _deliver(self, event: Event, target: Mapping[str, str]) -> None:
        if "webhook" in target:
            self._post(target["webhook"], event.document())
        elif "slack" in target:
            self._post(target["slack"], {"text": f"[retrain-cli] {event.summary}"})
        elif "email" in target:
            self._mail(target["email"], event)
        else:
            raise ValueError(f"unknown notification target {dict(target)!r}")

    def _post(self, url: str, document: dict[str, Any]) -> None:
        import urllib.request  # here, not at import: every command start imports this module

        body = scrub(json.dumps(document, sort_keys=True)).encode("utf-8")
        headers = {"Content-Type": "application/json", "User-Agent": "retrain-cli"}
        if self.secret:
            digest = hmac.new(str(self.secret).encode(), body, hashlib.sha256).hexdigest()
            headers[SIGNATURE_HEADER] = f"sha256={digest}"
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            if response.status >= 300:
                raise OSError(f"HTTP {response.status}")

    def _mail(self, address: str, event: Event) -> None:
        import smtplib
        from email.message import EmailMessage

        message = EmailMessage()
        message["Subject"] = f"[retrain-cli] {event.summary}"
        message["From"] = self.smtp.get("from", "retrain-cli@localhost")
        message["To"] = address
        message.set_content(scrub(json.dumps(event.document(), indent=2)))
        host, port = self.smtp.get("host", "localhost"), int(self.smtp.get("port", 25))
        with smtplib.SMTP(host, port, timeout=self.timeout) as client:
            client.send_message(message)

    def _record_failure(self, event: Event, target: Mapping[str, str], exc: Exception) -> None:

        kind, address = next(iter(target.items())) if target else ("?", "?")
        where = address if kind == "email" else redact_webhook(address)
        error = one_line(exc).replace(address, where)
        line = (
            f"{event.at.isoformat()} {event.kind} -> {kind} {where}: {type(exc).__name__}: {error}"
        )
        # nowhere left to say it if this fails; the command's own record is what matters
        with contextlib.suppress(OSError):
            append_line(self.log, line)
