"""The README stays a short tour whose links all lead somewhere."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
LINKS = sorted(set(re.findall(r"\]\(([^)#]+)\)", README.read_text())))


def test_the_readme_is_short_and_starts_with_the_two_commands() -> None:
    text = README.read_text()
    assert len(text.splitlines()) <= 200
    commands = text.split("```bash\n", 1)[1].split("```", 1)[0].splitlines()
    assert [c.split()[:2] for c in commands] == [
        ["bash", "examples/walkthrough.sh"],
        ["bash", ".ci/run"],
    ]


@pytest.mark.parametrize("link", LINKS)
def test_every_readme_link_exists(link: str) -> None:
    assert (ROOT / link).is_file(), link


def test_every_docs_page_says_what_the_reader_can_do_after_it() -> None:
    for page in sorted((ROOT / "docs").glob("*.md")):
        opening = " ".join(page.read_text().split("\n\n", 2)[1].split())
        assert opening.startswith("After this page you can"), page.name


def test_the_exit_code_table_is_one_table_with_every_code() -> None:
    text = README.read_text()
    table = text.split("| code | meaning |", 1)[1].split("\n\n", 1)[0]
    codes = [row.split("|")[1].strip() for row in table.strip().splitlines()[1:]]
    assert codes == ["0", "1", "2", "3", "75"]


def test_every_test_the_reliability_page_names_exists() -> None:
    named = set(re.findall(r"`(test_\w+)`", (ROOT / "docs" / "reliability.md").read_text()))
    defined = {
        name
        for path in (ROOT / "tests").rglob("test_*.py")
        for name in re.findall(r"^def (test_\w+)\(", path.read_text(), flags=re.MULTILINE)
    }
    assert len(named) >= 40 and named <= defined, sorted(named - defined)


def test_the_job_file_reference_example_is_a_valid_job() -> None:
    import yaml

    from retrain_cli.jobs.spec import JobSpec

    text = (ROOT / "docs" / "job-files.md").read_text()
    example = yaml.safe_load(re.findall(r"```yaml\n(.*?)```", text, re.S)[0])
    spec = JobSpec.model_validate(example)
    assert spec.performance.change_points is not None and spec.drift.multivariate is not None


def test_the_defaults_per_model_type_in_the_docs_are_those_db_init_seeds() -> None:
    from retrain_cli.db.schema import DEFAULT_CONFIGS

    text = (ROOT / "docs" / "job-files.md").read_text()
    documented = {
        cells[0].strip("` "): cells[1:6]
        for line in text.splitlines()
        if line.startswith("| `") and len(cells := [c.strip() for c in line.split("|")[1:-1]]) == 7
    }
    for default in DEFAULT_CONFIGS:
        if default["task"] != "binary":
            continue
        schedule, drift, performance, strategy, age = documented[default["model_type"]]
        assert schedule == f"`{default['schedule']}`"
        assert float(drift) == default["drift_threshold"]
        assert float(performance) == default["performance_threshold"]
        assert strategy == f"`{default['strategy']}`"
        assert age == f"{default['max_model_age_s'] // 86400} days"


def test_every_ci_script_that_installs_pytorch_asks_for_the_cpu_build_first() -> None:
    """A plain `torch` requirement is the multi-GB CUDA build off this machine."""
    installing = [p for p in sorted((ROOT / ".ci").iterdir()) if "torch==" in p.read_text()]
    assert {p.name for p in installing} >= {"setup", "oldest"}
    for script in installing:
        assert '--index-url "$CPU_INDEX"' in script.read_text(), script.name
