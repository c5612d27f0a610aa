from pathlib import Path

from croniter import croniter

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
    commands = [command.split(" 2>&1")[0] for _, command in entries]
    assert commands == [
        "retrain-cli jobs due --run --quiet",
        "retrain-cli drift check --all --quiet",
        "retrain-cli perf check --all --quiet",
    ]
