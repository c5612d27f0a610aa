"""No password reaches an output: every command that can print a URL, with passwords that hold
a space, `@`, `:`, `/`, `%` and non-ASCII characters, given inline, percent-encoded or through
`${VAR}`; stdout, stderr, `--json`, and every file under RETRAIN_HOME are searched."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml

from retrain_cli.core import redaction
from tests.conftest import Cli
from tests.helpers import window, write_job

PASSWORDS = ["pa ss word", "p@ss:w/rd", "50%of:/x", "pässwörd☃ü", "::@@//%%  "]
UNREACHABLE = "127.0.0.1:1"  # connection refused at once


@pytest.fixture(autouse=True)
def _forget() -> Iterator[None]:
    yield
    redaction.forget_all()


def _leaks(password: str, *texts: str) -> list[str]:
    forms = {password, quote(password, safe=""), quote(password)}
    return [form for form in forms for text in texts if form in text]


def _home_files(home: Path) -> str:
    return "\n".join(
        p.read_bytes().decode("utf-8", "replace")
        for p in home.rglob("*")
        if p.is_file() and p.suffix != ".db" and "-wal" not in p.name
    )


@pytest.mark.parametrize("password", PASSWORDS)
@pytest.mark.parametrize("command", [["jobs", "list"], ["db", "init"], ["stats", "--json"]])
def test_database_url_password_is_never_printed(
    password: str, command: list[str], home: Path
) -> None:
    url = f"postgresql://postgres:{quote(password, safe='')}@{UNREACHABLE}/nodb"
    result = Cli(url)(*command)
    assert result.exit_code == 1
    assert "postgres:***@127.0.0.1:1/nodb" in result.stderr
    assert not _leaks(password, result.stdout, result.stderr, _home_files(home))


@pytest.mark.parametrize("password", ["pa ss", "p:ss/w", "pässwörd☃"])
def test_a_password_written_unencoded_is_masked_whole(password: str) -> None:
    result = Cli(f"postgresql://postgres:{password}@{UNREACHABLE}/nodb")("jobs", "list")
    assert result.exit_code == 1
    assert "postgres:***@" in result.stderr
    assert not _leaks(password, result.stdout, result.stderr)


def test_an_unencoded_at_sign_is_refused_without_showing_any_part() -> None:
    result = Cli("postgresql://postgres:p@ss@127.0.0.1/db")("jobs", "list")
    assert result.exit_code == 1
    assert "write it as %40" in result.stderr
    assert "ss@" not in result.stderr.replace("***@", "")


def _sql_job(folder: Path, url: str) -> Path:
    window(50).to_parquet(folder / "cur.parquet")
    source = {"url": url, "query": "SELECT 1"}
    job = {
        "name": "leaky",
        "model": "leaky-model",
        "type": "lightgbm",
        "data": {"train": source, "reference": dict(source), "current": "cur.parquet"},
        "target": "y",
        "score_column": "score",
    }
    path = folder / "leaky.yaml"
    path.write_text(yaml.safe_dump(job, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.parametrize("password", ["p@ss:w/rd 50%☃", "pässwörd☃ü"])
@pytest.mark.parametrize("via", ["inline", "variable"])
def test_data_source_password_is_never_printed(
    password: str, via: str, cli: Cli, tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    encoded = quote(password, safe="")
    if via == "variable":
        monkeypatch.setenv("SOURCE_PASSWORD", encoded)
        written = "${SOURCE_PASSWORD}"
    else:
        written = encoded
    job = _sql_job(tmp_path, f"postgresql://reader:{written}@{UNREACHABLE}/warehouse")
    outputs = [cli("jobs", "apply", "-f", str(job))]
    assert outputs[0].exit_code == 0, outputs[0].output
    outputs += [
        cli("jobs", "show", "leaky"),
        cli("jobs", "show", "leaky", "--json"),
        cli("drift", "check", "leaky"),
        cli("drift", "check", "leaky", "--json"),
        cli("drift", "check", "--all", "--json"),
        cli("retrain", "leaky"),
        cli("retrain", "leaky", "--json"),
        cli("jobs", "due", "--json"),
    ]
    assert [r.exit_code for r in outputs[3:8]] == [1] * 5
    assert "query on postgresql://reader:" in outputs[3].stderr
    texts = [text for r in outputs for text in (r.stdout, r.stderr)]
    assert not _leaks(password, *texts, _home_files(home))


WEBHOOK_SECRETS = ["T0AAA/B0BBB/s3cr3tPathToken", "qs-t0ken-123", "hookuser", "hookpass"]
WEBHOOK = (
    "https://hookuser:hookpass@hooks.example:8443/T0AAA/B0BBB/s3cr3tPathToken?token=qs-t0ken-123"
)


@pytest.mark.parametrize("kind", ["webhook", "slack"])
def test_webhook_tokens_are_never_shown(cli: Cli, tmp_path: Path, home: Path, kind: str) -> None:
    """A webhook's (or Slack webhook's) path token, `?token=` query and user info are secrets:
    `jobs show` (text and JSON) and `jobs list` show only its scheme and host."""
    job = write_job(
        tmp_path, "hooked", notify=[{kind: WEBHOOK}, {"email": "ml-oncall@example.com"}]
    )
    assert cli("jobs", "apply", "-f", str(job)).exit_code == 0
    outputs = [
        cli("jobs", "show", "hooked"),
        cli("jobs", "show", "hooked", "--json"),
        cli("jobs", "list"),
        cli("jobs", "list", "--json"),
    ]
    assert [r.exit_code for r in outputs] == [0] * 4
    texts = [text for r in outputs for text in (r.stdout, r.stderr)]
    assert "https://hooks.example:8443/***" in outputs[1].stdout
    assert "ml-oncall@example.com" in outputs[1].stdout  # an address is not a secret
    assert [s for s in WEBHOOK_SECRETS if any(s in text for text in texts)] == []
