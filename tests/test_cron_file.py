import functools
import subprocess
import sys
from pathlib import Path

import pytest
from croniter import croniter

from tests.helpers import window, write_job

CRON_FILE = Path(__file__).resolve().parent.parent / "cron.d" / "retrain-cli"


def test_cron_file_has_the_three_design_lines_with_a_user_field() -> None:
    entries = []
    for line in CRON_FILE.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#") or "=" in line.split()[0]:
            continue
        fields = line.split(None, 6)
        assert croniter.is_valid(" ".join(fields[:5])), line
        entries.append((fields[5], fields[6]))
    assert [user for user, _ in entries] == ["retrain"] * 3
    commands = [command for _, command in entries]
    assert commands == [
        "retrain-cli jobs due --run --quiet",
        "retrain-cli drift check --all --quiet",
        "retrain-cli perf check --all --quiet",
    ]


def _cron_file() -> tuple[dict[str, str], list[str]]:
    """The variables the cron file sets, and the command of each entry."""
    variables, commands = {}, []
    for line in CRON_FILE.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if "=" in line.split()[0]:
            name, value = line.split("=", 1)
            variables[name.strip()] = value.strip()
        else:
            commands.append(line.split(None, 6)[6])
    return variables, commands


@pytest.mark.slow
def test_the_cron_lines_in_a_shell_without_syslog_keep_exit_codes_and_reach_the_log(
    tmp_path: Path, home: Path
) -> None:
    variables, commands = _cron_file()
    assert "logger" not in CRON_FILE.read_text().split("SHELL=")[1]  # nothing to drop lines
    bin_dir = Path(sys.executable).parent  # where the venv's retrain-cli lives
    env = {
        **variables,
        "PATH": f"{bin_dir}:{variables['PATH']}",
        "RETRAIN_HOME": str(home),
        "HOME": str(tmp_path),
    }
    run = functools.partial(subprocess.run, env=env, capture_output=True, text=True, check=False)
    assert run(["sh", "-c", "retrain-cli db init --quiet"]).returncode == 0
    window(seed=1).to_parquet(tmp_path / "ref.parquet")
    window(seed=2, shift=1.5).to_parquet(tmp_path / "cur.parquet")
    job = write_job(tmp_path, "j1", triggers=["manual"])
    assert run(["sh", "-c", f"retrain-cli jobs apply -f {job} --quiet"]).returncode == 0

    due, drift, perf = (run([variables["SHELL"], "-c", command]) for command in commands)
    assert (due.returncode, due.stdout, due.stderr) == (0, "", "")  # quiet success
    assert (perf.returncode, perf.stdout, perf.stderr) == (0, "", "")
    assert (drift.returncode, drift.stdout) == (3, "")  # not swallowed by a pipe
    assert drift.stderr == "drift detected: j1\n"
    log = home / "logs" / variables["RETRAIN_LOG"]
    lines = log.read_text().splitlines()
    assert [line.split(": ", 1)[1] for line in lines] == ["drift detected: j1", "exit 3"]
    assert all(line.split(" ", 1)[1].startswith("drift: ") for line in lines)

    (tmp_path / "cur.parquet").write_bytes(b"broken")
    drift = run([variables["SHELL"], "-c", commands[1]])
    assert drift.returncode == 1 and drift.stderr.startswith("Error: j1: current data")
    assert log.read_text().splitlines()[-1].endswith("drift: exit 1")


def test_the_log_rotates_and_keeps_three_old_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from retrain_cli.core import private

    monkeypatch.setattr(private, "LOG_MAX_BYTES", 100)
    log = tmp_path / "cron.log"
    for index in range(40):
        private.append_rotating(log, f"line {index:02d} " + "x" * 20)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "cron.log",
        "cron.log.1",
        "cron.log.2",
        "cron.log.3",
    ]
    assert log.read_text().splitlines()[-1].startswith("line 39")
    assert all(p.stat().st_size <= 100 + 30 for p in tmp_path.iterdir())
