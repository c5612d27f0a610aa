"""Job files: parse and fully validate YAML before anything is written.

A file holds one job (a mapping) or several (`jobs: [...]`). Every error names the file, the job and
the field, e.g. `jobs.yaml: job 'fraud-lgbm': schedule: invalid cron expression '61 * * * *'`.
Relative data paths are resolved against the file's folder, so a job works from any directory.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from retrain_cli.db.models import MODEL_TYPES, STRATEGIES, TRIGGERS
from retrain_cli.durations import parse_duration
from retrain_cli.errors import JobSpecError

DATA_ROLES = ("train", "reference", "current", "predictions")
DATA_SUFFIXES = (".parquet", ".pq", ".csv")
DRIFT_METHODS = ("psi", "js", "wasserstein_norm", "ks_pvalue", "chi2_pvalue")
# The metric names of `performance` (kept here so that validating a job file does not import
# numpy at every command start; a test keeps the two lists in agreement).
BOUNDED_METRICS = ("auc", "precision", "recall", "f1", "accuracy")
TRADING_METRICS = ("sharpe", "sortino", "total_return", "win_rate", "max_drawdown")
PRIMARY_METRICS = (*BOUNDED_METRICS, *TRADING_METRICS)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")

Validator = Callable[[Any], Any]


def load_job_file(path: Path) -> list[dict[str, Any]]:
    """Read and validate every job in `path`; raise `JobSpecError` on the first problem."""
    import yaml

    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
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

    specs, seen = [], set()
    for index, raw in enumerate(raw_jobs):
        spec = validate_job(raw, base_dir=path.resolve().parent, source=str(path), index=index + 1)
        if spec["name"] in seen:
            raise JobSpecError(f"{path}: job '{spec['name']}' is declared twice")
        seen.add(spec["name"])
        specs.append(spec)
    return specs


def validate_job(raw: Any, *, base_dir: Path, source: str, index: int = 1) -> dict[str, Any]:
    """Return the normalised spec of one job mapping, or raise `JobSpecError`.

    Defaults that live in `auto_retraining_config` (schedule, thresholds, strategy) stay None here
    and are resolved per model type when the job is used.
    """
    name = raw.get("name") if isinstance(raw, Mapping) else None
    where = (
        f"{source}: job '{name}'" if isinstance(name, str) and name else f"{source}: job #{index}"
    )
    if not isinstance(raw, Mapping):
        raise JobSpecError(f"{where}: a job must be a mapping of fields")
    unknown = sorted(set(map(str, raw)) - set(_FIELDS))
    if unknown:
        raise JobSpecError(
            f"{where}: unknown field(s) {', '.join(unknown)} (known: {', '.join(sorted(_FIELDS))})"
        )
    spec: dict[str, Any] = {}
    for field, (validate, default) in _FIELDS.items():
        if field not in raw or raw[field] is None:
            if default is _REQUIRED:
                raise JobSpecError(f"{where}: {field}: is required")
            spec[field] = default() if callable(default) else default
            continue
        try:
            spec[field] = validate(raw[field])
        except (ValueError, TypeError) as exc:
            raise JobSpecError(f"{where}: {field}: {exc}") from exc
    try:
        spec["data"] = {role: _resolve(src, base_dir) for role, src in spec["data"].items()}
        _check_consistency(spec)
    except ValueError as exc:
        raise JobSpecError(f"{where}: {exc}") from exc
    return spec


def _check_consistency(spec: dict[str, Any]) -> None:
    if spec["primary_metric"] is None:
        spec["primary_metric"] = "sharpe" if spec["return_column"] else "auc"
    if spec["primary_metric"] in TRADING_METRICS and not spec["return_column"]:
        raise ValueError(f"primary_metric: {spec['primary_metric']} needs a return_column")
    performance = spec["thresholds"].get("performance")
    bounded = spec["primary_metric"] in BOUNDED_METRICS
    if performance is not None and bounded and not 0 <= performance <= 1:
        raise ValueError(
            f"thresholds.performance: {performance} is outside [0, 1] for {spec['primary_metric']}"
        )
    special = {spec["target"], spec["time_column"], spec["score_column"], spec["return_column"]}
    overlap = sorted(set(spec["features"] or []) & (special - {None}))
    if overlap:
        raise ValueError(f"features: {', '.join(overlap)} is the target, time, score or return")
    if spec["members"] and spec["type"] != "ensemble":
        raise ValueError("members: only an ensemble job has members")


# --- field validators -----------------------------------------------------------------------


def _string(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"expected a non-empty string, got {value!r}")
    return value.strip()


def _identifier(value: Any) -> str:
    text = _string(value)
    if not _NAME.match(text):
        raise ValueError(
            f"{text!r} must be 1-128 letters, digits, '.', '_' or '-', starting with a letter or "
            "digit (it names files and directories)"
        )
    return text


def _choice(*choices: str) -> Validator:
    def validate(value: Any) -> str:
        if value not in choices:
            raise ValueError(f"{value!r} is not one of {', '.join(choices)}")
        return str(value)

    return validate


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def _number(low: float = -math.inf, high: float = math.inf, *, open_low: bool = False) -> Validator:
    def validate(value: Any) -> float:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise ValueError(f"expected a finite number, got {value!r}")
        if value < low or value > high or (open_low and value == low):
            bracket = "(" if open_low else "["
            raise ValueError(f"{value} is outside {bracket}{low}, {high}]")
        return float(value)

    return validate


def _integer(low: int) -> Validator:
    def validate(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"expected an integer >= {low}, got {value!r}")
        return value

    return validate


def _cron(value: Any) -> str:
    from croniter import croniter

    text = _string(value)
    if len(text.split()) != 5 or not croniter.is_valid(text):
        raise ValueError(f"invalid cron expression {text!r} (five fields: min hour dom mon dow)")
    return text


def _timezone(value: Any) -> str:
    text = _string(value)
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {text!r}") from exc
    return text


def _duration_seconds(value: Any) -> int:
    return int(parse_duration(value).total_seconds())


def _string_list(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError("expected a list of column names")
    if len(set(value)) != len(value):
        raise ValueError("lists a name twice")
    return list(value)


def _triggers(value: Any) -> list[str]:
    names = _string_list(value)
    for name in names:
        _choice(*TRIGGERS)(name)
    return names


def _mapping(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"expected a mapping, got {value!r}")
    return {str(k): v for k, v in value.items()}


def _section(fields: Mapping[str, Validator]) -> Validator:
    def validate(value: Any) -> dict[str, Any]:
        section = _mapping(value)
        out = {}
        for key, item in section.items():
            if key not in fields:
                raise ValueError(f"unknown key {key!r} (known: {', '.join(fields)})")
            try:
                out[key] = fields[key](item)
            except ValueError as exc:
                raise ValueError(f"{key}: {exc}") from exc
        return out

    return validate


def _data(value: Any) -> dict[str, Any]:
    sources = _mapping(value)
    unknown = sorted(set(sources) - set(DATA_ROLES))
    if unknown:
        raise ValueError(f"unknown source(s) {', '.join(unknown)} (known: {', '.join(DATA_ROLES)})")
    if "train" not in sources:
        raise ValueError("a 'train' source is required")
    out = {}
    for role, source in sources.items():
        if isinstance(source, str):
            if not source.lower().endswith(DATA_SUFFIXES):
                raise ValueError(f"{role}: {source!r} is not a .parquet or .csv file")
            out[role] = {"path": source}
        elif isinstance(source, Mapping) and set(source) == {"url", "query"}:
            out[role] = {"url": _string(source["url"]), "query": _string(source["query"])}
        else:
            raise ValueError(f"{role}: expected a file path or {{url: ..., query: ...}}")
    return out


def _resolve(source: dict[str, str], base_dir: Path) -> dict[str, str]:
    if "path" in source:
        return {"path": str((base_dir / Path(source["path"]).expanduser()).resolve())}
    return source


def _notify(value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list):
        raise ValueError("expected a list of targets like {webhook: URL} or {email: ADDRESS}")
    targets = []
    for target in value:
        if not isinstance(target, Mapping) or len(target) != 1:
            raise ValueError(f"{target!r}: expected one of {{webhook: URL}}, {{email: ADDRESS}}")
        ((kind, address),) = target.items()
        _choice("webhook", "slack", "email")(kind)
        targets.append({str(kind): _string(address)})
    return targets


_REQUIRED = object()
_FIELDS: dict[str, tuple[Validator, Any]] = {
    "name": (_identifier, _REQUIRED),
    "model": (_identifier, _REQUIRED),
    "type": (_choice(*MODEL_TYPES), _REQUIRED),
    "description": (_string, None),
    "enabled": (_bool, True),
    "schedule": (_cron, None),
    "timezone": (_timezone, "UTC"),
    "priority": (_integer(-1_000_000), 0),
    "data": (_data, _REQUIRED),
    "target": (_string, _REQUIRED),
    "time_column": (_string, None),
    "features": (_string_list, None),
    "categorical": (_string_list, list),
    "score_column": (_string, "score"),
    "return_column": (_string, None),
    "thresholds": (
        _section({"drift": _number(0, open_low=True), "performance": _number()}),
        dict,
    ),
    "primary_metric": (_choice(*PRIMARY_METRICS), None),
    "strategy": (_choice(*STRATEGIES), None),
    "hyperparameters": (_mapping, dict),
    "members": (_string_list, list),
    "device": (_choice("auto", "cpu", "cuda"), "auto"),
    "holdout_fraction": (_number(0, 0.9, open_low=True), 0.2),
    "timeout": (_duration_seconds, 3600),
    "max_model_age": (_duration_seconds, None),
    "retry_backoff": (_duration_seconds, 1800),
    "triggers": (_triggers, lambda: list(TRIGGERS)),
    "drift": (
        _section(
            {
                "method": _choice(*DRIFT_METHODS),
                "alpha": _number(0, 1, open_low=True),
                "drift_share": _number(0, 1, open_low=True),
                "bins": _integer(2),
                "max_missing_rate_change": _number(0, 1),
            }
        ),
        dict,
    ),
    "performance": (
        _section(
            {
                "window": _duration_seconds,
                "min_samples": _integer(1),
                "max_relative_drop": _number(0, 1),
                "decision_threshold": _number(0, 1),
                "periods_per_year": _number(0, open_low=True),
                "risk_free": _number(),
            }
        ),
        dict,
    ),
    "gate": (
        _section({"min_improvement": _number(), "min_samples": _integer(1)}),
        dict,
    ),
    "notify": (_notify, list),
}
