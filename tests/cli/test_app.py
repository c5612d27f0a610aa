import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.main import get_command

from retrain_cli.cli.app import app
from tests.conftest import EXAMPLES, Cli
from tests.helpers import register_versions

HEAVY = ("torch", "lightgbm", "pandas", "scipy", "sklearn")


def walk(command: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    found = [(path, command)]
    for name, sub in getattr(command, "commands", {}).items():
        found += walk(sub, (*path, name))
    return found


def test_every_command_of_the_synopsis_exists() -> None:
    names = {" ".join(p) for p, _ in walk(get_command(app))}
    expected = {
        "db init",
        "jobs apply",
        "jobs list",
        "jobs show",
        "jobs enable",
        "jobs disable",
        "jobs trigger",
        "jobs due",
        "drift check",
        "perf check",
        "retrain",
        "versions list",
        "versions promote",
        "versions rollback",
        "stats",
    }
    assert expected <= names


@pytest.mark.parametrize("path", [p for p, _ in walk(get_command(app))], ids=" ".join)
def test_every_command_has_help_text(path: tuple[str, ...]) -> None:
    command = dict(walk(get_command(app)))[path]
    assert (command.help or "").strip(), f"{' '.join(path) or 'root'} has no help text"


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run the real console entry point with stdout and stderr on pipes (as cron does)."""
    return subprocess.run(
        [sys.executable, "-m", "retrain_cli", *args],
        capture_output=True,
        env={**os.environ, **(env or {})},
        timeout=120,
        check=False,
    )


@pytest.mark.slow
def test_help_runs_as_a_subprocess() -> None:
    result = run("--help")
    assert result.returncode == 0
    assert b"retrain" in result.stdout


@pytest.mark.slow
def test_quiet_commands_print_zero_bytes_under_a_pipe(home: Path) -> None:
    env = {"RETRAIN_HOME": str(home)}
    for args in (
        ("db", "init", "--quiet"),
        ("jobs", "apply", "-f", str(EXAMPLES / "jobs" / "fraud-lgbm.yaml"), "--quiet"),
        ("jobs", "list", "--quiet"),
        ("jobs", "trigger", "fraud-lgbm", "--quiet"),
        ("db", "init", "--quiet", "--json"),
    ):
        result = run(*args, env=env)
        assert (result.returncode, result.stdout, result.stderr) == (0, b"", b""), args


def test_json_is_exactly_one_document(cli: Cli) -> None:
    cli("jobs", "apply", "-f", str(EXAMPLES / "jobs" / "fraud-lgbm.yaml"))
    for args in (
        ("jobs", "list", "--json"),
        ("jobs", "show", "fraud-lgbm", "--json"),
        ("db", "init", "--json"),
    ):
        result = cli(*args)
        assert result.exit_code == 0, result.stderr
        assert isinstance(json.loads(result.stdout), dict)


def test_commands_before_db_init_say_how_to_fix_it(empty_db_url: str) -> None:
    result = Cli(empty_db_url)("jobs", "list")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: the database has no retrain-cli schema: run `retrain-cli db init`\n"
    )


def test_unreachable_database_is_one_line_without_the_password() -> None:
    url = "postgresql+psycopg2://app:Sup3rS3cret@127.0.0.1:1/ml"
    for args in (("jobs", "list"), ("db", "init")):
        result = Cli(url)(*args)
        assert result.exit_code == 1
        assert result.stderr.count("\n") == 1 and result.stderr.startswith("Error: ")
        assert "Sup3rS3cret" not in result.stderr + result.stdout
        assert "app:***@127.0.0.1:1/ml" in result.stderr


@pytest.mark.slow
def test_debug_shows_the_traceback(empty_db_url: str) -> None:
    result = run("--debug", "jobs", "list", "--database-url", empty_db_url)
    assert result.returncode == 1
    assert b"Traceback" in result.stderr


def test_usage_error_is_exit_2() -> None:
    assert Cli(None)("jobs", "apply").exit_code == 2


USAGE_ERRORS = {
    "mistyped command": (["jobs", "shwo"], "Error: no such command 'shwo'. Did you mean 'show'?"),
    "mistyped group": (["jbos"], "Error: no such command 'jbos'. Did you mean 'jobs'?"),
    "missing argument": (["jobs", "show"], "Error: missing argument 'NAME'"),
    "unknown option": (["jobs", "list", "--bogus"], "Error: no such option: --bogus"),
    "bad value": (["stats", "--since", "abc"], "Error: invalid value for --since: not a duration"),
    "no job and no --all": (["drift", "check"], "Error: name one or more jobs, or pass --all"),
    "conflicting flags": (
        ["versions", "rollout", "m", "--abort", "--promote-now"],
        "Error: --abort",
    ),
}


@pytest.mark.parametrize(("args", "line"), USAGE_ERRORS.values(), ids=USAGE_ERRORS)
def test_every_usage_error_is_one_error_line_with_a_hint_and_exit_2(
    cli: Cli, args: list[str], line: str
) -> None:
    result = cli(*args)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    (printed,) = result.stderr.splitlines()
    assert printed.startswith(line), printed
    if "Error: name" not in line and "Error: --ab" not in line:  # click's: where the forms are
        assert printed.endswith("--help`)")


def test_a_mistyped_job_or_model_name_suggests_the_nearest(
    cli: Cli, tmp_path: Path, session: Any
) -> None:
    assert cli("jobs", "apply", "-f", str(EXAMPLES / "jobs" / "fraud-lgbm.yaml")).exit_code == 0
    result = cli("jobs", "show", "fraud-lbgm")
    assert result.exit_code == 1
    assert "no job named 'fraud-lbgm'; did you mean 'fraud-lgbm'?" in result.stderr
    assert "did you mean" not in cli("jobs", "show", "zzz").stderr
    register_versions(session, "fraud-model", 1)
    for args in (("versions", "list", "fraud-modle"), ("versions", "promote", "fraud-modle", "1")):
        result = cli(*args)
        assert result.exit_code == 1
        assert "model 'fraud-modle' has no versions; did you mean 'fraud-model'?" in result.stderr


CLOSED_SETS = {
    "drift --method": (
        ["drift", "check", "--model", "m", "--reference", "r.parquet", "--current", "c.parquet"],
        "--method",
        ["psi", "js", "wasserstein_norm", "ks_pvalue", "chi2_pvalue"],
    ),
    "perf --primary-metric": (
        ["perf", "check", "--model", "m", "--predictions", "p.parquet"],
        "--primary-metric",
        ["auc", "f1", "sharpe", "max_drawdown"],
    ),
    "retrain --trigger": (
        ["retrain", "j1"],
        "--trigger",
        ["scheduled", "drift", "performance", "age", "manual"],
    ),
}


@pytest.mark.parametrize(("args", "flag", "choices"), CLOSED_SETS.values(), ids=CLOSED_SETS)
def test_a_value_outside_a_closed_set_is_a_usage_error_naming_the_choices(
    args: list[str], flag: str, choices: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    result = Cli(None)(*args, flag, "foo")
    assert result.exit_code == 2
    assert "'foo' is not one of" in result.stderr
    assert all(choice in result.stderr for choice in choices)
    help_text = Cli(None)(*args[: 2 if args[0] != "retrain" else 1], "--help").stdout
    words = set(re.findall(r"[\w]+", help_text))  # an 80-column help splits no choice
    assert [choice for choice in choices if choice not in words] == []


def imported_by(home: Path, *args: str) -> set[str]:
    """Every module a real `retrain-cli ARGS` process imports (from `python -X importtime`)."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "retrain_cli", *args],
        capture_output=True,
        env={**os.environ, "RETRAIN_HOME": str(home)},
        timeout=120,
        check=False,
    )
    modules = {
        line.rsplit("|", 1)[-1].strip()
        for line in result.stderr.decode().splitlines()
        if line.startswith("import time:")
    }
    assert "typer" in modules, result.stderr.decode()[-500:]  # the measurement works
    return modules


@pytest.mark.slow
@pytest.mark.parametrize("args", [("jobs", "list"), ("jobs", "due")])
def test_fast_commands_import_no_heavy_library(args: tuple[str, ...], home: Path) -> None:
    run("db", "init", "--quiet", env={"RETRAIN_HOME": str(home)})
    imported = {name.split(".")[0] for name in imported_by(home, *args)}
    assert "sqlalchemy" in imported
    assert imported.isdisjoint({*HEAVY, "numpy"}), sorted(imported & {*HEAVY, "numpy"})


@pytest.mark.slow
@pytest.mark.parametrize("args", [("--version",), ("--help",), ("jobs", "--help")])
def test_version_and_help_import_neither_the_database_nor_numpy(
    args: tuple[str, ...], home: Path
) -> None:
    """The command tree is built without the library: its imports wait in the commands."""
    imported = {name.split(".")[0] for name in imported_by(home, *args)}
    unwanted = {*HEAVY, "numpy", "sqlalchemy", "alembic"}  # (typer itself may load pydantic)
    assert imported.isdisjoint(unwanted), sorted(imported & unwanted)


@pytest.mark.slow
def test_a_drift_check_on_parquet_windows_never_imports_pandas(home: Path, tmp_path: Path) -> None:
    # Parquet windows stay Arrow tables end to end: no pandas frame is ever built
    import pandas as pd

    for name, shift in (("ref", 0.0), ("cur", 0.5)):
        x = np.array([1.0, np.nan, 2.5, 4.0] * 4_000) + shift  # 12,000 values: asymptotic
        frame = pd.DataFrame({"x": x, "c": ["a", "b", None, "a"] * 4_000})
        frame.to_parquet(tmp_path / f"{name}.parquet")
    run("db", "init", "--quiet", env={"RETRAIN_HOME": str(home)})
    args = ["drift", "check", "--model", "m", "--reference", str(tmp_path / "ref.parquet")]
    args += ["--current", str(tmp_path / "cur.parquet")]
    code = (  # in a fresh process; -X importtime loses what a thread imports
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from retrain_cli.cli.app import app\n"
        f"result = CliRunner().invoke(app, {args!r})\n"
        "print(result.exit_code, 'pandas' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "RETRAIN_HOME": str(home)},
        timeout=120,
        check=False,
    )
    assert done.stdout.split() == ["0", "False"], done.stderr


def test_the_entry_point_freezes_what_the_cli_imported_and_keeps_collecting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import gc

    import retrain_cli.cli
    import retrain_cli.cli.app

    seen: list[tuple[bool, int]] = []
    monkeypatch.setattr(
        retrain_cli.cli.app, "main", lambda: seen.append((gc.isenabled(), gc.get_freeze_count()))
    )
    gc.unfreeze()
    try:
        retrain_cli.cli.main()
    finally:
        gc.unfreeze()
    assert len(seen) == 1
    enabled, frozen = seen[0]
    assert enabled and frozen > 10_000  # the imports' objects, out of every later collection


@pytest.mark.slow
def test_state_on_a_fresh_machine_is_private(tmp_path: Path) -> None:
    home = tmp_path / "fresh" / "home"
    assert run("db", "init", "--quiet", env={"RETRAIN_HOME": str(home)}).returncode == 0
    assert home.stat().st_mode & 0o777 == 0o700
    assert (home / "retrain.db").stat().st_mode & 0o777 == 0o600


def test_a_table_in_a_pipe_is_tab_separated_with_one_field_per_column(cli: Cli) -> None:
    from tests.conftest import EXAMPLES

    assert cli("jobs", "apply", "-f", str(EXAMPLES / "jobs" / "fraud-lgbm.yaml")).exit_code == 0
    lines = cli("stats").stdout.splitlines()
    header, row = lines[0].split("\t"), lines[1].split("\t")
    assert header[:3] == ["job", "model", "runs"] and "next fire" in header
    assert len(row) == len(header) and row[0] == "fraud-lgbm"


def test_a_table_on_an_80_column_terminal_keeps_every_name_and_header_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import io

    from rich.console import Console

    from retrain_cli.cli import output

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdout", Terminal())
    names = ["fraud-detector-eu-west-2", "fraud-detector-eu-east-1"]
    columns = ["job", "model", "runs", "success", "p50 s", "last run", "drift", "next fire"]
    reason = "the challenger's auc 0.9123 beats the champion's 0.9011 by more than 0.005"
    rows = [
        (name, name + "-model", "failed 2 succeeded 40", 0.95, 12.5, reason, 3, "soon")
        for name in names
    ]

    def shown(width: int) -> str:
        screen = Console(file=io.StringIO(), width=width, force_terminal=True, color_system=None)
        screen.print(output.table(None, columns, rows))
        return screen.file.getvalue()  # type: ignore[attr-defined, no-any-return]

    narrow, wide = shown(80), shown(200)
    for text in (narrow, wide):
        assert "…" not in text and all(name + "-model" in text for name in names)
        assert all(f"{name} " in text or f"{name}\n" in text for name in names)
        assert all(column in text for column in columns)
    assert all(len(line) <= 80 for line in narrow.splitlines())  # one block per job
    assert "\nsuccess    0.95\n" in narrow and "failed 2 succeeded 40" in narrow
    # a long value wraps between words, indented under its value, and nothing is cut
    assert " ".join(narrow.split()).count(reason) == len(names)
    assert all(line.startswith(" " * 11) for line in narrow.splitlines() if "0.005" in line)
    assert any(names[0] in line and "soon" in line for line in wide.splitlines())  # a table


def _complete(env: dict[str, str], words: str) -> subprocess.CompletedProcess[str]:
    environment = {**env, "_RETRAIN_CLI_COMPLETE": "complete_bash", "COMP_WORDS": words}
    environment["COMP_CWORD"] = str(len(words.split()) - 1)
    argv = [sys.executable, "-m", "retrain_cli"]
    return subprocess.run(argv, env=environment, capture_output=True, text=True, timeout=30)


@pytest.mark.slow
def test_shell_completion_offers_job_and_model_names_from_the_database(
    cli: Cli, db_url: str, tmp_path: Path, home: Path
) -> None:
    from tests.conftest import EXAMPLES

    for name in ("fraud-lgbm", "demand-lstm"):
        assert cli("jobs", "apply", "-f", str(EXAMPLES / "jobs" / f"{name}.yaml")).exit_code == 0
    env = {**os.environ, "RETRAIN_HOME": str(home), "RETRAIN_DATABASE_URL": db_url}
    assert _complete(env, "retrain-cli jobs show fr").stdout.split() == ["fraud-lgbm"]
    assert _complete(env, "retrain-cli retrain d").stdout.split() == ["demand-lstm"]
    assert _complete(env, "retrain-cli versions list fr").stdout.split() == ["fraud"]
    unreachable = {**env, "RETRAIN_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none"}
    silent = _complete(unreachable, "retrain-cli jobs show fr")
    assert (silent.returncode, silent.stdout.strip(), silent.stderr) == (0, "", "")
    fresh = {**env, "RETRAIN_HOME": str(tmp_path / "fresh")}
    fresh.pop("RETRAIN_DATABASE_URL")
    assert _complete(fresh, "retrain-cli jobs show fr").stdout.strip() == ""
    assert not (tmp_path / "fresh" / "retrain.db").exists()  # completing created nothing


@pytest.mark.slow
@pytest.mark.parametrize(
    ("shell", "script"),
    [("bash", ".bash_completions/retrain-cli.sh"), ("zsh", ".zfunc/_retrain-cli")],
)
def test_install_completion_writes_the_shell_script(
    tmp_path: Path, shell: str, script: str
) -> None:
    env = {**os.environ, "HOME": str(tmp_path), "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}
    argv = [sys.executable, "-m", "retrain_cli", "--install-completion", shell]
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "_RETRAIN_CLI_COMPLETE" in (tmp_path / script).read_text()


COMMANDS = dict(walk(get_command(app)))
LEAVES = [path for path, command in COMMANDS.items() if not getattr(command, "commands", None)]
GROUPS = [path for path, command in COMMANDS.items() if getattr(command, "commands", None)]


@pytest.mark.parametrize("path", LEAVES, ids=" ".join)
def test_each_command_s_help_has_an_example_capital_metavars_and_a_plain_usage(
    path: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    text = Cli(None)(*path, "--help").stdout
    usage = next(line for line in text.splitlines() if "Usage:" in line)
    assert "{" not in usage, usage
    assert f"Example: retrain-cli {' '.join(path)}" in text
    assert "<bool>" not in text
    typed = re.findall(r"--[\w-]+\s+<(?:str|int|float|path|datetime)>", text)
    assert not typed, typed  # an option's value is named in capitals: --reason REASON


@pytest.mark.parametrize("path", GROUPS, ids=lambda path: " ".join(path) or "retrain-cli")
def test_a_group_lists_each_command_on_one_line_on_a_wide_terminal(
    path: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A summary wrapped in its docstring reads as one paragraph, not as ragged lines."""
    monkeypatch.setenv("COLUMNS", "400")
    lines = Cli(None)(*path, "--help").stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if "─ Commands ─" in line) + 1
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("╰"))
    listed = [line.strip("│ ").split()[0] for line in lines[start:end]]
    assert sorted(listed) == sorted(COMMANDS[path].commands)


def test_the_commands_are_listed_in_the_order_of_the_cron_cycle() -> None:
    lines = Cli(None)("--help").stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if "─ Commands ─" in line) + 1
    listed = [line.strip("│ ").split()[0] for line in lines[start:] if line.startswith("│ ")]
    cycle = ["db", "jobs", "drift", "perf", "retrain", "versions", "stats", "report"]
    assert [name for name in listed if name in cycle] == cycle
