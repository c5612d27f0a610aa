"""Passwords never reach an output.

Every URL retrain-cli is given (the database URL; a data source's URL, as written and after
`${VAR}` expansion) is parsed with SQLAlchemy's URL parser, the one that connects with it. A URL
is printed with its password masked, and the password itself, as written and as decoded, is
remembered for the run: every line written to stdout, stderr, logs and notifications has the
remembered passwords replaced by `***`, whatever characters they hold.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from retrain_cli.core.errors import ConfigError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

MASK = "***"
# Shorter passwords are masked inside URLs only: replacing "ab" in every line would garble them.
MIN_SCRUBBED = 4
_remembered: set[str] = set()
_REFERENCE = re.compile(r"\$\{\w+\}")


def redact_url(url: str) -> str:
    """`url` with its password masked: `postgresql://u:***@host/db`.

    A URL that does not parse, or whose password holds an unescaped `@` (every `@` but the
    last is then the password's), is masked from the user name's `:` to its last `@`.
    """
    parsed = _parse(url)
    if parsed is not None and url.count("@") <= 1:
        if not parsed.password or _REFERENCE.fullmatch(parsed.password):
            return url  # `${VAR}` names where the password is; it is not one
        return parsed.render_as_string(hide_password=True)
    scheme, sep, rest = url.partition("://")
    user, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in user:
        return url
    return f"{scheme}://{user.partition(':')[0]}:{MASK}@{host}"


def remember_secret(value: str) -> None:
    """Remember a secret that is not in a URL (a store's key) so no output shows it."""
    if value:
        _remembered.add(value)


def remember(url: str) -> None:
    """Remember the password of `url` (as written and decoded) so no output shows it."""
    _, sep, rest = url.partition("://")
    user, at, _ = rest.rpartition("@")
    if not (sep and at and ":" in user):
        return
    raw = user.partition(":")[2]
    parsed = _parse(url)
    for secret in {raw, unquote(raw), parsed.password if parsed is not None else None}:
        if isinstance(secret, str) and secret and not _REFERENCE.fullmatch(secret):
            _remembered.add(secret)


def redact_webhook(url: str) -> str:
    """A webhook URL as outputs show it: scheme, host and port only. Its user, path and query
    are left out, whatever they look like: Slack-style paths and `?token=` queries are the
    secret that lets anyone post."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return MASK
    return f"{parts.scheme}://{host}{port}/{MASK}"


_REDACTED_KEYS = {"url": redact_url, "webhook": redact_webhook, "slack": redact_webhook}


def redact_urls(document: Any) -> Any:
    """A copy of a document (a job's spec, its settings) with its secrets masked: the password
    of every `url`, and everything but the host of every `webhook` or `slack` notification
    target."""
    if isinstance(document, dict):
        return {
            key: _REDACTED_KEYS[key](value)
            if key in _REDACTED_KEYS and isinstance(value, str)
            else redact_urls(value)
            for key, value in document.items()
        }
    if isinstance(document, list | tuple):
        return [redact_urls(value) for value in document]
    return document


def check_url(url: str, what: str) -> URL:
    """`url` parsed, or a `ConfigError` that names `what` and shows the URL redacted."""
    parsed = _parse(url)
    if parsed is None:
        raise ConfigError(f"{what} is not a database URL: {redact_url(url)}")
    if url.count("@") > 1:
        raise ConfigError(
            f"{what} {redact_url(url)}: the password holds an '@'; write it as %40 "
            "(percent-encode the password)"
        )
    return parsed


def scrub(text: str) -> str:
    """`text` with every remembered password, also in its JSON-escaped form, masked."""
    for secret in sorted(_remembered, key=len, reverse=True):
        for form in {secret, json.dumps(secret)[1:-1]}:
            if len(secret) >= MIN_SCRUBBED:
                text = text.replace(form, MASK)
            else:
                text = text.replace(f":{form}@", f":{MASK}@")
    return text


def forget_all() -> None:
    """Forget every remembered password (tests run many commands in one process)."""
    _remembered.clear()


def _parse(url: str) -> URL | None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url)
    except (ArgumentError, ValueError):
        return None
