"""A self-contained HTML drift report: histograms as inline SVG, drifted columns first."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from retrain_cli.core.errors import DataError
from retrain_cli.core.private import write_private_text

if TYPE_CHECKING:
    from retrain_cli.drift.compare import ColumnDrift, DriftResult
    from retrain_cli.statistics.drift import Histogram

STYLE = """
body{font:14px system-ui,sans-serif;margin:2em;color:#222}
h1{font-size:1.4em} h2{font-size:1.15em;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0} td,th{padding:.2em .7em;border-bottom:1px solid #ddd}
th{text-align:left} .drift{color:#b00020;font-weight:600} .ok{color:#2e7d32}
.col{display:inline-block;vertical-align:top;margin:0 1.5em 1.5em 0}
.legend span{display:inline-block;width:.9em;height:.9em;margin:0 .3em 0 1em}
"""
REF, CUR = "#4e79a7", "#f28e2b"
WIDTH, HEIGHT = 360, 140


def write_report(path: Path, results: Sequence[DriftResult]) -> None:
    """Write the report atomically (a temp file renamed into place)."""
    body = "".join(_result(r) for r in results) or "<p>No drift results.</p>"
    document = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Drift report</title>"
        f"<style>{STYLE}</style></head><body><h1>Drift report</h1>"
        f"<p class='legend'>Proportions per bin:<span style='background:{REF}'></span>reference"
        f"<span style='background:{CUR}'></span>current</p>{body}</body></html>"
    )
    path = path.expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_private_text(path, document)
    except OSError as exc:
        raise DataError(f"cannot write the report {path}: {exc.strerror or exc}") from exc


def _result(result: DriftResult) -> str:
    columns = [*result.features, *([result.prediction] if result.prediction else [])]
    columns.sort(key=lambda c: (not c.drifted, c.feature))
    verdict = "<span class='drift'>DRIFT</span>" if result.drifted else "<span class='ok'>ok</span>"
    title = html.escape(f"{result.job or 'ad hoc'} — model {result.model}")
    rows = "".join(_row(c) for c in columns)
    charts = "".join(_chart(c) for c in columns)
    return (
        f"<h2>{title}: {verdict}</h2><p>checked {result.checked_at:%Y-%m-%d %H:%M UTC}; "
        f"drift share {_number(result.drift_share, '.2f')} (alarm at {result.required_share:.2f}); "
        f"{result.n_reference} reference rows, {result.n_current} current rows</p>"
        "<table><tr><th>column</th><th>kind</th><th>drifted</th><th>method</th>"
        "<th>statistic</th><th>threshold</th><th>psi</th><th>js</th><th>p-value</th>"
        f"<th>missing ref/cur</th></tr>{rows}</table>{charts}"
    )


def _row(column: ColumnDrift) -> str:
    m = column.metrics
    p_value = m.get("ks_pvalue", m.get("chi2_pvalue"))
    cells = [
        html.escape(column.feature),
        column.kind,
        "<span class='drift'>yes</span>" if column.drifted else "no",
        column.method,
        _number(column.statistic, ".4g", m.get("undefined")),
        f"{column.threshold:.4g}",
        _number(m.get("psi"), ".4g"),
        _number(m.get("js"), ".4g"),
        "-" if p_value is None else f"{p_value:.3g}",
        f"{column.missing_rate_ref:.1%} / {column.missing_rate_cur:.1%}",
    ]
    return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def _number(value: float | None, spec: str, why: str | None = None) -> str:
    return format(value, spec) if value is not None else html.escape(why or "-")


def _chart(column: ColumnDrift) -> str:
    label = html.escape(column.feature) + (" (drifted)" if column.drifted else "")
    return f"<div class='col'><b>{label}</b><br>{_svg(column.histogram)}</div>"


def _svg(histogram: Histogram) -> str:
    n = len(histogram.labels)
    top = max([*histogram.reference, *histogram.current, 1e-12])
    slot = WIDTH / max(n, 1)
    bar = slot * 0.4
    bars = []
    for i, (label, ref, cur) in enumerate(
        zip(histogram.labels, histogram.reference, histogram.current, strict=True)
    ):
        x = i * slot + slot * 0.1
        for offset, value, colour, name in ((0, ref, REF, "reference"), (bar, cur, CUR, "current")):
            h = value / top * (HEIGHT - 10)
            tip = html.escape(f"{label}: {name} {value:.1%}")
            bars.append(
                f"<rect x='{x + offset:.1f}' y='{HEIGHT - h:.1f}' width='{bar:.1f}' "
                f"height='{h:.1f}' fill='{colour}'><title>{tip}</title></rect>"
            )
    return (
        f"<svg width='{WIDTH}' height='{HEIGHT}' viewBox='0 0 {WIDTH} {HEIGHT}' "
        f"xmlns='http://www.w3.org/2000/svg'>{''.join(bars)}</svg>"
    )
