"""Reading job files into validated specs (`jobspec.JobSpec`).

A file holds one job (a mapping) or several (`jobs: [...]`). Every error names the file, the job and
the field, e.g. `jobs.yaml: job 'fraud-lgbm': schedule: invalid cron expression '61 * * * *'`.
Relative data paths are resolved against the file's folder, so a job works from any directory.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from retrain_cli.core.errors import JobSpecError
from retrain_cli.core.fields import first_problem
from retrain_cli.jobs.spec import DataSource, DataSources, JobSpec

MAX_JOB_FILE_BYTES = 1 << 20


def load_job_file(path: Path) -> list[JobSpec]:
    """Read and validate every job in `path`; raise `JobSpecError` on the first problem.

    A job file is small and plain: at most MAX_JOB_FILE_BYTES, no YAML aliases (a few hundred
    bytes of them expand to gigabytes) and no key given twice in one mapping.
    """
    import yaml

    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_JOB_FILE_BYTES + 1)
        if len(raw) > MAX_JOB_FILE_BYTES:
            raise JobSpecError(
                f"{path}: larger than a job file may be ({MAX_JOB_FILE_BYTES} bytes)"
            )
        document = yaml.load(raw.decode("utf-8"), Loader=_strict_loader())
    except FileNotFoundError as exc:
        raise JobSpecError(f"{path}: no such job file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise JobSpecError(f"{path}: cannot read: {exc}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "malformed YAML"
        raise JobSpecError(f"{path}: malformed YAML{where}: {problem}") from exc
    if isinstance(document, Mapping) and set(document) == {"jobs"}:
        raw_jobs = document["jobs"]
        if not isinstance(raw_jobs, list) or not raw_jobs:
            raise JobSpecError(f"{path}: 'jobs' must be a non-empty list of job mappings")
    elif isinstance(document, Mapping):
        raw_jobs = [document]
    else:
        raise JobSpecError(f"{path}: expected a job mapping or 'jobs: [...]'")

    specs: list[JobSpec] = []
    for index, raw in enumerate(raw_jobs):
        spec = validate_job(raw, base_dir=path.resolve().parent, source=str(path), index=index + 1)
        if any(s.name == spec.name for s in specs):
            raise JobSpecError(f"{path}: job '{spec.name}' is declared twice")
        specs.append(spec)
    return specs


def load_job_files(paths: Sequence[Path]) -> list[tuple[Path, list[JobSpec]]]:
    """Every file's jobs, validated; a job name declared in two of the files is an error."""
    loaded = [(path, load_job_file(path)) for path in paths]
    seen: dict[str, Path] = {}
    for path, specs in loaded:
        for spec in specs:
            first = seen.setdefault(spec.name, path)
            if first != path:
                raise JobSpecError(f"{path}: job '{spec.name}' is also declared in {first}")
    return loaded


def _strict_loader() -> type:
    """yaml.SafeLoader, refusing aliases and keys given twice."""
    import yaml

    class StrictLoader(yaml.SafeLoader):
        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise yaml.composer.ComposerError(
                    None, None, "aliases (*name) are not allowed in job files", mark
                )
            return super().compose_node(parent, index)

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key {key!r} is given twice", key_node.start_mark
                    )
                seen.add(key)
            return super().construct_mapping(node, deep=deep)

    return StrictLoader


def validate_job(raw: Any, *, base_dir: Path, source: str, index: int = 1) -> JobSpec:
    """The validated spec of one job mapping, its file paths made absolute; or `JobSpecError`."""
    name = raw.get("name") if isinstance(raw, Mapping) else None
    where = (
        f"{source}: job '{name}'" if isinstance(name, str) and name else f"{source}: job #{index}"
    )
    if not isinstance(raw, Mapping):
        raise JobSpecError(f"{where}: a job must be a mapping of fields")
    present = {str(k): v for k, v in raw.items() if v is not None}
    try:
        spec = JobSpec.model_validate(present)
    except ValidationError as exc:
        raise JobSpecError(f"{where}: {first_problem(exc)}") from None
    data = {
        role: source.resolved(base_dir)
        for role, source in spec.data
        if isinstance(source, DataSource)
    }
    return spec.model_copy(update={"data": DataSources(**data)})
