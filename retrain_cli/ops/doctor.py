"""`retrain-cli doctor`: the set-up checked the way cron will run it, one finding per line.

Cron reports a missing user ("no passwd entry") or a PATH that does not reach `retrain-cli` only
to syslog: nothing reaches the log file or the mail, and nothing runs. The checks read the
installed cron file for what cron will use (its user, PATH, RETRAIN_HOME, RETRAIN_DATABASE_URL)
and look at each thing it needs, in the order a fix is made.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import make_url

from retrain_cli.core.durations import utcnow
from retrain_cli.core.errors import RetrainError, one_line
from retrain_cli.core.settings import Settings, load_settings
from retrain_cli.db.queries import database_now
from retrain_cli.db.session import SCHEMA_REVISION, make_engine, session_scope
from retrain_cli.store import objects

CRON_FILE = Path("/etc/cron.d/retrain-cli")
CRON_PATH = "/usr/bin:/bin"  # cron's PATH where the file sets none
MAX_CLOCK_SKEW_S = 5.0  # leases run on the database's clock, schedules on the host's


@dataclass(frozen=True)
class Finding:
    check: str
    ok: bool
    detail: str  # what was found, or what is wrong and how to fix it


@dataclass(frozen=True)
class CronFile:
    """What cron takes from an `/etc/cron.d` file: its variables and the user of each line."""

    path: Path
    variables: dict[str, str] = field(default_factory=dict)
    users: list[str] = field(default_factory=list)

    @classmethod
    def read(cls, path: Path) -> CronFile:
        variables: dict[str, str] = {}
        users: list[str] = []
        for raw in path.read_text(encoding="utf-8").splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            name, sep, value = line.partition("=")
            if sep and " " not in name.strip() and not name.strip()[:1].isdigit():
                variables[name.strip()] = value.strip().strip("'\"")
                continue
            fields = line.split()
            if len(fields) > 6 and "retrain-cli" in " ".join(fields[6:]):
                users.append(fields[5])
        return cls(path, variables, list(dict.fromkeys(users)))


@dataclass
class Doctor:
    """The findings so far; each check adds one."""

    findings: list[Finding] = field(default_factory=list)

    def check(self, name: str, run: Callable[[], str]) -> None:
        """`run` returns what it found, or raises `Problem` (or any library error) saying what
        is wrong."""
        try:
            self.findings.append(Finding(name, True, run()))
        except Problem as problem:
            self.findings.append(Finding(name, False, str(problem)))
        except (RetrainError, OSError) as exc:
            self.findings.append(Finding(name, False, one_line(exc)))

    @property
    def healthy(self) -> bool:
        return all(f.ok for f in self.findings)


class Problem(Exception):
    """A check found something to fix; the message says what and how."""


def diagnose(cron_path: Path = CRON_FILE, env: Mapping[str, str] | None = None) -> Doctor:
    """Every check, as cron will run the file at `cron_path` (or as this shell would, when no
    cron file is installed)."""
    env = dict(os.environ if env is None else env)
    doctor = Doctor()
    cron: CronFile | None = None

    def cron_file() -> str:
        nonlocal cron
        if not cron_path.is_file():
            raise Problem(
                f"{cron_path} is not installed: sudo install -m 0644 cron.d/retrain-cli "
                f"{cron_path.parent}/"
            )
        mode = cron_path.stat()
        system = cron_path.parent == CRON_FILE.parent  # cron's own rule for /etc/cron.d
        if system and (mode.st_mode & (stat.S_IWGRP | stat.S_IWOTH) or mode.st_uid != 0):
            raise Problem(
                f"{cron_path} must be owned by root and writable by no one else, or cron "
                f"ignores it: sudo chown root: {cron_path} && sudo chmod 0644 {cron_path}"
            )
        cron = CronFile.read(cron_path)
        if not cron.users:
            raise Problem(f"{cron_path} has no line that runs retrain-cli")
        return f"{cron_path}: {len(cron.users)} user(s), {', '.join(cron.users)}"

    doctor.check("cron file", cron_file)
    account: pwd.struct_passwd | None = None

    def user() -> str:
        nonlocal account
        name = cron.users[0] if cron and cron.users else _current_user()
        try:
            account = pwd.getpwnam(name)
        except KeyError:
            raise Problem(
                f"no user {name!r}: cron runs nothing and says so only to syslog; create it: "
                f"sudo useradd --system --create-home --home-dir /var/lib/retrain-cli {name}"
            ) from None
        return f"{name} (uid {account.pw_uid}, home {account.pw_dir})"

    doctor.check("user", user)
    if cron is not None:  # what cron gives a command: its file's variables and the user's HOME
        env = {"PATH": CRON_PATH, **cron.variables}
        if account is not None:  # RETRAIN_HOME then defaults under the user's HOME
            env["HOME"] = account.pw_dir
    settings: Settings | None = None

    def path() -> str:
        search = env.get("PATH", CRON_PATH)
        found = shutil.which("retrain-cli", path=search)
        if found is None:
            raise Problem(
                f"PATH={search} does not reach retrain-cli: set PATH in the cron file to the "
                f"folder that holds it ({_here()})"
            )
        return found

    doctor.check("PATH", path)
    if cron is not None and account is None and "RETRAIN_HOME" not in cron.variables:
        doctor.findings.append(
            Finding("settings", False, "the user's RETRAIN_HOME is unknown until the user exists")
        )
        return doctor

    def configuration() -> str:
        nonlocal settings
        settings = load_settings(env=env)
        return f"RETRAIN_HOME {settings.home}, database {settings.safe_database_url}"

    doctor.check("settings", configuration)
    if settings is None:
        return doctor
    resolved: Settings = settings
    skew_s: float | None = None  # of this host's clock from the database's

    def database() -> str:
        nonlocal skew_s
        found, skew_s = _database(resolved)
        return found

    doctor.check("database", database)
    doctor.check("RETRAIN_HOME", lambda: _home(resolved, account))
    doctor.check("artifacts", lambda: _artifacts(resolved))
    if skew_s is not None:
        measured = skew_s
        doctor.check("clock", lambda: _clock(measured, env))
    return doctor


def _database(settings: Settings) -> tuple[str, float]:
    """The database reachable at this release's schema, and how far this host's clock is from
    the database's (one connection for both)."""
    url = make_url(settings.database_url)
    path = Path(url.database or ":memory:").expanduser()
    if url.get_backend_name() == "sqlite" and str(path) != ":memory:" and not path.is_file():
        # opening it would create it here, owned by whoever runs the doctor
        raise Problem(f"no database at {path}: run `retrain-cli db init` as cron's user")
    engine = make_engine(settings.database_url, connect_timeout=5)
    try:
        with session_scope(engine) as session:  # checks the schema's revision
            skew_s = abs((database_now(session) - utcnow()).total_seconds())
    finally:
        engine.dispose()
    return f"{settings.safe_database_url} reachable, schema at {SCHEMA_REVISION}", skew_s


def _home(settings: Settings, account: pwd.struct_passwd | None) -> str:
    home = settings.home
    if not home.exists():
        return _writable(home, "RETRAIN_HOME")
    info = home.stat()
    if account is not None and info.st_uid != account.pw_uid:
        raise Problem(
            f"{home} belongs to uid {info.st_uid}, not to {account.pw_name}: "
            f"sudo chown -R {account.pw_name}: {home}"
        )
    if info.st_mode & 0o077:
        raise Problem(
            f"{home} is readable by others (mode {info.st_mode & 0o777:o}): chmod 700 {home}"
        )
    if not os.access(home, os.W_OK) and account is None:
        raise Problem(f"{home} is not writable")
    return f"{home} (mode 700)"


def _artifacts(settings: Settings) -> str:
    """The artifacts folder is writable; a store's prefix is listable, and this host's
    folder for its verified copies writable."""
    if settings.artifacts_store is None:
        return _writable(settings.artifacts_dir, "artifacts_dir")
    cache = _writable(settings.artifacts_dir, "the artifact cache")
    try:
        objects.folders(settings.artifacts_store)
    except objects.StoreError as exc:
        raise Problem(str(exc)) from exc
    return f"{settings.artifacts_store} reachable; this host's copies in {cache}"


def _writable(path: Path, what: str) -> str:
    """`path`, or the nearest folder above it that exists, is one retrain-cli can write in."""
    existing = path
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise Problem(f"{what} {path}: cannot write in {existing}")
    return f"{path}" + ("" if existing == path else f" (to be created in {existing})")


def _clock(skew_s: float, env: Mapping[str, str]) -> str:
    zone = env.get("CRON_TZ") or env.get("TZ") or time.tzname[0]
    if skew_s > MAX_CLOCK_SKEW_S:
        raise Problem(
            f"this host's clock is {skew_s:.0f} s off the database's: leases and schedules "
            "disagree; run an NTP client (chrony, systemd-timesyncd)"
        )
    return f"cron fires in {zone}; the database's clock within {skew_s:.1f} s of this host's"


def _current_user() -> str:
    return pwd.getpwuid(os.getuid()).pw_name


def _here() -> str:
    """Where the running retrain-cli lives (the venv's bin, beside its Python)."""
    beside = Path(sys.executable).parent
    found = shutil.which("retrain-cli") or (
        str(beside / "retrain-cli") if (beside / "retrain-cli").exists() else None
    )
    return str(Path(found).parent) if found else "the venv's bin"
