"""`retrain-cli doctor`: the set-up checked as cron will run it, one line per check, exit 1 on any
problem, each saying how to fix it."""

from __future__ import annotations

import getpass
import json
import pwd
import sys
from pathlib import Path

from tests.conftest import Cli

SHIPPED = Path(__file__).resolve().parent.parent / "cron.d" / "retrain-cli"


def cron_file(folder: Path, user: str, path: str, **variables: str) -> Path:
    """The shipped file's three lines, for `user`, with `path` and `variables` set."""
    lines = [f"PATH={path}", *(f"{name}={value}" for name, value in variables.items())]
    for line in SHIPPED.read_text().splitlines():
        if "retrain-cli" in line and not line.startswith("#") and "=" not in line.split()[0]:
            fields = line.split()
            lines.append(" ".join([*fields[:5], user, *fields[6:]]))
    target = folder / "retrain-cli.cron"
    target.write_text("\n".join(lines) + "\n")
    return target


def findings(cli: Cli, cron: Path) -> tuple[int, dict[str, tuple[bool, str]]]:
    result = cli("doctor", "--cron-file", str(cron), "--json", url=False)
    document = json.loads(result.stdout)
    checks = {f["check"]: (f["ok"], f["detail"]) for f in document["findings"]}
    assert document["healthy"] == (result.exit_code == 0)
    return result.exit_code, checks


def test_the_shipped_cron_file_on_a_host_without_its_user_says_how_to_create_it() -> None:
    result = Cli(None)("doctor", "--cron-file", str(SHIPPED), url=False)
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith("ok    cron file:")
    assert lines[1] == (
        "FAIL  user: no user 'retrain': cron runs nothing and says so only to syslog; create "
        "it: sudo useradd --system --create-home --home-dir /var/lib/retrain-cli retrain"
    )


def test_a_host_set_up_for_cron_passes_every_check(db_url: str, tmp_path: Path, home: Path) -> None:
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    bin_dir = str(Path(sys.executable).parent)  # where this venv's retrain-cli is
    cron = cron_file(
        tmp_path,
        getpass.getuser(),
        f"{bin_dir}:/usr/bin:/bin",
        RETRAIN_HOME=str(home),
        RETRAIN_DATABASE_URL=db_url,
    )
    code, checks = findings(Cli(None), cron)
    assert code == 0, checks
    assert list(checks) == [
        "cron file",
        "user",
        "PATH",
        "settings",
        "database",
        "RETRAIN_HOME",
        "artifacts",
        "clock",
    ]
    assert checks["PATH"] == (True, f"{bin_dir}/retrain-cli")
    assert "schema at 0011_runs_and_windows" in checks["database"][1]


def test_each_broken_part_is_one_failed_line_with_its_fix(tmp_path: Path, home: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(0o755)
    cron = cron_file(
        tmp_path,
        getpass.getuser(),
        "/usr/bin:/bin",
        RETRAIN_HOME=str(home),
        RETRAIN_DATABASE_URL=f"sqlite:///{tmp_path / 'missing.db'}",
    )
    code, checks = findings(Cli(None), cron)
    assert code == 1
    assert checks["PATH"][0] is False and "does not reach retrain-cli" in checks["PATH"][1]
    assert checks["database"] == (
        False,
        f"no database at {tmp_path / 'missing.db'}: run `retrain-cli db init` as cron's user",
    )
    assert not (tmp_path / "missing.db").exists()  # looking created nothing
    assert checks["RETRAIN_HOME"] == (
        False,
        f"{home} is readable by others (mode 755): chmod 700 {home}",
    )
    assert "clock" not in checks  # nothing to compare with


def test_without_an_installed_cron_file_it_says_how_to_install_it(tmp_path: Path) -> None:
    code, checks = findings(Cli(None), tmp_path / "nowhere")
    assert code == 1
    assert checks["cron file"] == (
        False,
        f"{tmp_path / 'nowhere'} is not installed: sudo install -m 0644 cron.d/retrain-cli "
        f"{tmp_path}/",
    )


def test_without_retrain_home_in_the_cron_file_the_users_own_home_is_checked(
    tmp_path: Path,
) -> None:
    """Cron gives a command its user's HOME, not the caller's environment."""
    user = getpass.getuser()
    cron = cron_file(tmp_path, user, "/usr/bin:/bin")
    _, checks = findings(Cli(None), cron)
    expected = Path(pwd.getpwnam(user).pw_dir) / ".local" / "share" / "retrain-cli"
    assert checks["settings"][1].startswith(f"RETRAIN_HOME {expected}, database sqlite:///")
