"""A job's data contract (`schema:`) checked on a window in one streaming pass.

The window is read in the record batches of the profile mode (`streaming.iter_batches`), so the
memory is bounded by a batch, not by the window. Column types are read from the Arrow schema.
The per-row rules (range, categories) are pandera checks, run on each batch with `lazy=True` so
that every failing value is counted, not only the first. The rules over the whole table are
totalled across batches: missing rates, the row count, the newest `time_column` value, and key
uniqueness, exactly, by keeping every key seen (memory grows with the number of distinct keys:
about 100 bytes each, 1 GB for ten million keys; a key column is usually far smaller than the
window, and only the columns marked `unique` are kept).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from retrain_cli.core.errors import DataError
from retrain_cli.data import sources as datasource
from retrain_cli.data import streaming
from retrain_cli.data.predictions import timestamps
from retrain_cli.jobs.sections import ColumnContract, ColumnType, SchemaSpec
from retrain_cli.jobs.spec import DataSource

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

SHOWN = 10  # rules named in a retrain's error before "and N more"


@dataclass(frozen=True)
class Violation:
    """One broken rule: which, of which column (None: the table), what was found, the limit."""

    rule: str  # required, type, range, categories, missing, unique, min_rows, freshness
    column: str | None
    observed: float | None
    limit: float | None
    message: str


@dataclass
class Totals:
    """What the rules over the whole table need, counted batch by batch; the counts of two
    parts of a window (two cluster tasks) merge into the window's."""

    rows: int = 0
    missing: dict[str, int] = field(default_factory=dict)
    failing: dict[tuple[str, str], int] = field(default_factory=dict)  # (column, rule)
    example: dict[tuple[str, str], Any] = field(default_factory=dict)
    seen: dict[str, set[Any]] = field(default_factory=dict)
    duplicates: dict[str, int] = field(default_factory=dict)
    duplicate_example: dict[str, Any] = field(default_factory=dict)
    newest: Any = None

    def merge(self, other: Totals) -> None:
        self.rows += other.rows
        for counts, more in ((self.missing, other.missing), (self.duplicates, other.duplicates)):
            for key, n in more.items():
                counts[key] = counts.get(key, 0) + n
        for pair, n in other.failing.items():
            self.failing[pair] = self.failing.get(pair, 0) + n
            self.example.setdefault(pair, other.example[pair])
        for name, example in other.duplicate_example.items():
            self.duplicate_example.setdefault(name, example)
        for name, keys in other.seen.items():  # a key in both parts repeats once more
            mine = self.seen.setdefault(name, set())
            both = mine & keys
            if both:
                self.duplicates[name] = self.duplicates.get(name, 0) + len(both)
                self.duplicate_example.setdefault(name, next(iter(both)))
            mine |= keys
        if other.newest is not None and (self.newest is None or other.newest > self.newest):
            self.newest = other.newest


@dataclass(frozen=True)
class Plan:
    """What a contract's pass over one window reads: the columns that are there, and the
    violations found before reading any row (a required column that is missing)."""

    wanted: dict[str, ColumnContract]
    names: list[str]  # the columns to read, the time column included when freshness needs it
    numeric: list[str]  # parsed as numbers in a CSV window
    time_column: str | None  # read for the freshness rule
    missing: list[Violation]


def plan(source: DataSource, role: str, contract: SchemaSpec, time_column: str | None) -> Plan:
    present = datasource.column_types(source, role)
    wanted = dict(contract.columns)
    missing = []
    if present is not None:
        for name, rules in contract.columns.items():
            if name not in present:
                wanted.pop(name)
                if rules.required:
                    message = f"column {name!r} is missing"
                    missing.append(Violation("required", name, None, None, message))
    fresh = time_column if contract.freshness is not None else None
    names = list(wanted) + ([fresh] if fresh and fresh not in wanted else [])
    numeric = [n for n, r in wanted.items() if r.type in (ColumnType.INTEGER, ColumnType.NUMBER)]
    return Plan(wanted, names, numeric, fresh, missing)


def check(
    source: DataSource,
    role: str,
    contract: SchemaSpec,
    time_column: str | None,
    now: datetime,
) -> list[Violation]:
    """Every rule of `contract` the window breaks (empty: it keeps the contract), streamed
    here; `compute.Backend.check_contract` counts a Parquet window on the cluster instead."""
    planned = plan(source, role, contract, time_column)
    if planned.names:
        batches = streaming.iter_batches(source, role, planned.names, planned.numeric)
        totals = count(batches, planned)
    else:  # only the table's rules: count the rows
        totals = Totals(rows=_rows(source, role))
    return verdicts(planned, totals, contract, now)


def _rows(source: DataSource, role: str) -> int:
    """The window's rows: from Parquet metadata, else by streaming its first column."""
    rows = datasource.row_count(source, role)
    if rows is not None:
        return rows
    present = datasource.column_types(source, role)
    if not present:
        raise DataError(
            f"cannot count the rows of the {role} query for schema.min_rows: "
            "name one of its columns under schema.columns"
        )
    first = [next(iter(present))]
    return sum(batch.num_rows for batch in streaming.iter_batches(source, role, first))


def summary(what: str, broken: list[Violation]) -> str:
    shown = "; ".join(v.message for v in broken[:SHOWN])
    more = f"; and {len(broken) - SHOWN} more" if len(broken) > SHOWN else ""
    return f"{what} ({len(broken)} rule(s)): {shown}{more}"


def count(batches: Iterable[pa.RecordBatch], planned: Plan) -> Totals:
    """The window's (or one part's) batches counted for the contract's rules."""
    totals = Totals()
    wanted, time_column = planned.wanted, planned.time_column
    schema, meaning = _pandera_schema(wanted)
    types_checked: set[str] = set()
    for batch in batches:
        frame = batch.to_pandas()
        totals.rows += len(frame)
        for name, rules in wanted.items():
            if name not in frame.columns:
                continue
            if name not in types_checked:
                types_checked.add(name)
                _type(batch.schema.field(name).type, name, rules, totals)
            column = frame[name]
            totals.missing[name] = totals.missing.get(name, 0) + int(column.isna().sum())
            if rules.unique:
                _keys(column.dropna(), name, totals)
        if schema is not None:
            _row_rules(schema, meaning, frame, totals)
        if time_column is not None and time_column in frame.columns and len(frame):
            newest = _newest(frame[time_column], time_column)
            if newest is not None and (totals.newest is None or newest > totals.newest):
                totals.newest = newest
    return totals


def _type(kind: pa.DataType, name: str, rules: ColumnContract, totals: Totals) -> None:
    import pyarrow as pa

    if rules.type is None:
        return
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    fits = {
        ColumnType.INTEGER: pa.types.is_integer(kind),
        ColumnType.NUMBER: pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_decimal(kind),
        ColumnType.STRING: pa.types.is_string(kind) or pa.types.is_large_string(kind),
        ColumnType.BOOLEAN: pa.types.is_boolean(kind),
        ColumnType.TIMESTAMP: pa.types.is_timestamp(kind) or pa.types.is_date(kind),
    }[rules.type]
    if not fits and not pa.types.is_null(kind):  # an all-missing column has no type to judge
        totals.failing[(name, "type")] = 1
        totals.example[(name, "type")] = str(kind)


def _pandera_schema(wanted: dict[str, ColumnContract]) -> tuple[Any, dict[tuple[str, int], str]]:
    """The per-row rules as one pandera schema (None when there are none), and the rule each
    (column, check number) stands for."""
    checks: dict[str, list[tuple[str, Any]]] = {}
    for name, rules in wanted.items():
        if rules.min is None and rules.max is None and rules.categories is None:
            continue
        import pandera.pandas as pandera

        listed = checks.setdefault(name, [])
        if rules.min is not None:
            listed.append(("range", pandera.Check.ge(rules.min)))
        if rules.max is not None:
            listed.append(("range", pandera.Check.le(rules.max)))
        if rules.categories is not None:
            listed.append(("categories", pandera.Check.isin(rules.categories)))
    if not checks:
        return None, {}
    import pandera.pandas as pandera

    schema = pandera.DataFrameSchema(
        {
            name: pandera.Column(
                checks=[c for _, c in listed], nullable=True, required=False, coerce=False
            )
            for name, listed in checks.items()
        }
    )
    meaning = {(n, i): rule for n, listed in checks.items() for i, (rule, _) in enumerate(listed)}
    return schema, meaning


def _row_rules(
    schema: Any, meaning: dict[tuple[str, int], str], frame: pd.DataFrame, totals: Totals
) -> None:
    import pandera.errors

    try:
        schema.validate(frame, lazy=True)
    except pandera.errors.SchemaErrors as errors:
        cases = errors.failure_cases
        for (column, number), group in cases.groupby(["column", "check_number"], sort=False):
            rule = meaning.get((str(column), int(number)))
            if rule is None:  # not a rule of ours (pandera's own dtype or presence checks)
                continue
            key = (str(column), rule)
            totals.failing[key] = totals.failing.get(key, 0) + len(group)
            totals.example.setdefault(key, group["failure_case"].iloc[0])
    except (TypeError, ValueError) as exc:  # a range on text: the type rule says why
        raise DataError(f"cannot check the data contract's rules: {exc}") from exc


def _keys(values: pd.Series[Any], name: str, totals: Totals) -> None:
    """Count the keys seen before, in this batch or an earlier one."""
    seen = totals.seen.setdefault(name, set())
    for value in values.tolist():
        if value in seen:
            totals.duplicates[name] = totals.duplicates.get(name, 0) + 1
            totals.duplicate_example.setdefault(name, value)
        else:
            seen.add(value)


def _newest(column: pd.Series[Any], name: str) -> Any:
    import pandas as pd

    stamps = timestamps(pd.DataFrame({name: column}), name)
    newest = stamps.max()
    return None if pd.isna(newest) else newest.to_pydatetime()


def verdicts(planned: Plan, totals: Totals, contract: SchemaSpec, now: datetime) -> list[Violation]:
    """The broken rules, from what a pass (or the merged passes over a window's parts) counted."""
    found = list(planned.missing)
    rows, wanted = totals.rows, planned.wanted
    for name, rules in wanted.items():
        if (name, "type") in totals.failing:
            kind = totals.example[(name, "type")]
            message = f"column {name!r} is {kind}, not {rules.type}"
            found.append(Violation("type", name, None, None, message))
        for rule in ("range", "categories"):
            failing = totals.failing.get((name, rule))
            if failing:
                allowed = (
                    f"outside [{_bound(rules.min)}, {_bound(rules.max)}]"
                    if rule == "range"
                    else "not among its categories"
                )
                example = totals.example[(name, rule)]
                message = f"column {name!r}: {failing} value(s) {allowed} (e.g. {example!r})"
                found.append(Violation(rule, name, float(failing), None, message))
        if rules.max_missing is not None and rows:
            share = totals.missing.get(name, 0) / rows
            if share > rules.max_missing:
                message = f"column {name!r} is {share:.1%} missing, at most {rules.max_missing:.1%}"
                found.append(Violation("missing", name, share, rules.max_missing, message))
        repeated = totals.duplicates.get(name)
        if repeated:
            example = totals.duplicate_example.get(name)
            message = f"column {name!r} has {repeated} repeated key(s) (e.g. {example!r})"
            found.append(Violation("unique", name, float(repeated), None, message))
    if contract.min_rows is not None and rows < contract.min_rows:
        message = f"{rows} rows, fewer than {contract.min_rows}"
        found.append(Violation("min_rows", None, float(rows), float(contract.min_rows), message))
    if contract.freshness is not None:
        limit = timedelta(seconds=contract.freshness)
        newest = totals.newest
        if newest is None or now - newest > limit:
            age = None if newest is None else (now - newest).total_seconds()
            said = "no timestamps" if newest is None else f"the newest row is from {newest}"
            message = f"{said}, older than {limit}"
            found.append(Violation("freshness", None, age, float(contract.freshness), message))
    return found


def _bound(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


MAX_INFERRED_CATEGORIES = 50  # a text column with more distinct values gets no category list


def infer(source: DataSource, role: str, skip: Iterable[str] = ()) -> SchemaSpec:
    """A contract the window keeps, as TFDV's `infer_schema` proposes one, to be pasted into the
    job file and edited: each column's type; `min: 0` for a numeric column without negative
    values; the categories of a text column with at most MAX_INFERRED_CATEGORIES; a missing
    rate bound 0.05 above the observed one rounded up to 0.05. No maximum and no uniqueness
    are guessed: a maximum of past data is the first thing new data breaks."""
    import math

    import pyarrow as pa
    import pyarrow.compute as pc

    present = datasource.column_types(source, role)
    names = [n for n in (present or {}) if n not in set(skip)]
    rows = 0
    kinds: dict[str, pa.DataType] = {}
    missing: dict[str, int] = {}
    negative: dict[str, bool] = {}
    values: dict[str, set[str] | None] = {}
    for batch in streaming.iter_batches(source, role, names):
        rows += batch.num_rows
        for name in names:
            column = batch.column(name)
            kind = column.type.value_type if pa.types.is_dictionary(column.type) else column.type
            if not pa.types.is_null(kind):
                kinds.setdefault(name, kind)
            missing[name] = missing.get(name, 0) + column.null_count
            if pa.types.is_integer(kind) or pa.types.is_floating(kind):
                low = pc.min(column).as_py()
                negative[name] = negative.get(name, False) or (low is not None and low < 0)
            elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
                seen = values.get(name, set())
                if seen is not None:
                    seen.update(str(v) for v in pc.unique(column.cast(kind)).to_pylist() if v)
                    big = len(seen) > MAX_INFERRED_CATEGORIES
                    values[name] = None if big else seen
    columns: dict[str, ColumnContract] = {}
    for name in names:
        kind = kinds.get(name)
        rules: dict[str, Any] = {"type": _kind_of(kind)} if kind is not None else {}
        if name in negative and not negative[name]:
            rules["min"] = 0.0
        if values.get(name):
            rules["categories"] = sorted(values[name] or ())
        share = missing.get(name, 0) / rows if rows else 0.0
        rules["max_missing"] = min(1.0, math.ceil(share * 20) / 20 + 0.05)
        columns[name] = ColumnContract.model_validate(rules)
    return SchemaSpec(columns=columns)


def _kind_of(kind: pa.DataType) -> ColumnType | None:
    import pyarrow as pa

    if pa.types.is_integer(kind):
        return ColumnType.INTEGER
    if pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return ColumnType.NUMBER
    if pa.types.is_boolean(kind):
        return ColumnType.BOOLEAN
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        return ColumnType.TIMESTAMP
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return ColumnType.STRING
    return None
