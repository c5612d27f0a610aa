"""A data contract's pass over one window: its rules beside a bare read of the same columns.

    .venv/bin/python benchmarks/bench_contracts.py [--rows 2000000] [--repeats 3] [--write]

One Parquet window of `--rows` rows: 10 numeric columns, 2 text columns, an integer key and a
time column. Three runs of each, side by side, each a child process of its own (wall seconds
and peak resident memory):

- `read`: the contract's columns streamed in the same record batches, nothing checked (the floor);
- `rules`: type, range, categories and missing rate on every column, min_rows and freshness;
- `rules + unique key`: the same, and the key column's uniqueness (every key kept).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine, median, timed_run_rss, update_section

NUMERIC = [f"x{i}" for i in range(10)]
TEXT = ["colour", "region"]


def make_window(path: Path, rows: int) -> None:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({name: rng.normal(0, 1, rows) for name in NUMERIC})
    frame["colour"] = rng.choice(["red", "green", "blue"], rows)
    frame["region"] = rng.choice([f"r{i}" for i in range(20)], rows)
    frame["id"] = np.arange(rows)
    frame["ts"] = pd.date_range("2026-01-01", periods=rows, freq="s", tz="UTC")
    frame.to_parquet(path, row_group_size=1 << 17)


def contract(unique: bool) -> dict[str, object]:
    columns: dict[str, object] = {
        name: {"type": "number", "min": -10, "max": 10, "max_missing": 0.01} for name in NUMERIC
    }
    columns["colour"] = {"type": "string", "categories": ["red", "green", "blue"]}
    columns["region"] = {"type": "string", "categories": [f"r{i}" for i in range(20)]}
    columns["id"] = {"type": "integer", "unique": unique}
    return {"min_rows": 1000, "freshness": "3650d", "columns": columns}


def child(mode: str, path: str) -> None:
    from datetime import UTC, datetime

    from retrain_cli.data import contracts, streaming
    from retrain_cli.data.sources import file_source
    from retrain_cli.jobs.sections import SchemaSpec

    source = file_source(path)
    if mode == "read":
        names = [*NUMERIC, *TEXT, "id", "ts"]
        rows = sum(b.to_pandas().shape[0] for b in streaming.iter_batches(source, "c", names))
        assert rows > 0
        return
    spec = SchemaSpec.model_validate(contract(unique=mode == "unique"))
    broken = contracts.check(source, "current", spec, "ts", datetime(2026, 6, 1, tzinfo=UTC))
    assert broken == [], broken


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "window.parquet"
        make_window(path, args.rows)
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
        results = {}
        for mode in ("read", "rules", "unique"):
            runs = [
                timed_run_rss([sys.executable, __file__, "--child", mode, str(path)], env)
                for _ in range(args.repeats)
            ]
            assert all(code == 0 for _, code, _ in runs), mode
            results[mode] = (median([s for s, _, _ in runs]), max(m for _, _, m in runs))
    floor = results["read"][0]
    lines = [
        f"## Data contracts: one pass over {args.rows:,} rows (issue #39)",
        "",
        f"`benchmarks/bench_contracts.py --rows {args.rows}`; {machine()}; median of "
        f"{args.repeats} child processes each, side by side in one run. 10 numeric columns "
        "(type, range, missing rate), 2 text columns (categories), an integer key, a time column "
        "(freshness), in record batches of 131,072 rows.",
        "",
        "| pass | seconds | vs the read | peak memory |",
        "|---|---|---|---|",
    ]
    names = {"read": "read only", "rules": "rules", "unique": "rules + unique key"}
    for mode, (seconds, peak) in results.items():
        lines.append(f"| {names[mode]} | {seconds:.2f} | {seconds / floor:.1f}x | {peak:.0f} MB |")
    text = "\n".join(lines)
    print(text)
    if args.write:
        update_section("contracts", text)


if __name__ == "__main__":
    main()
