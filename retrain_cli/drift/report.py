"""A self-contained HTML drift report (`templates/report.html.j2`): histograms as inline SVG,
drifted columns first."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from retrain_cli.core.errors import DataError
from retrain_cli.core.private import write_private_text
from retrain_cli.core.templates import render

if TYPE_CHECKING:
    from retrain_cli.drift.compare import ColumnDrift, DriftResult
    from retrain_cli.statistics.drift import Histogram

REF, CUR = "#4e79a7", "#f28e2b"
WIDTH, HEIGHT = 360, 140
AXIS = 64  # below the bars: each bin's edges or category, slanted
LABEL_CHARS = 16


@dataclass(frozen=True)
class Bar:
    x: str
    y: str
    width: str
    height: str
    colour: str
    tip: str


@dataclass(frozen=True)
class Tick:
    """A bin's label under its bars: `[0.25, 0.5)` for a numeric bin, the category's name."""

    x: str
    text: str
    full: str


@dataclass(frozen=True)
class ColumnView:
    feature: str
    kind: str
    drifted: bool
    method: str
    statistic: str
    threshold: str
    psi: str
    js: str
    p_value: str
    missing: str
    bars: list[Bar]
    ticks: list[Tick]
    top: str  # the proportion the highest bar stands for


@dataclass(frozen=True)
class ResultView:
    title: str
    drifted: bool
    checked_at: str
    share: str
    required_share: str
    n_reference: int
    n_current: int
    columns: list[ColumnView]


def write_report(path: Path, results: Sequence[DriftResult]) -> None:
    """Write the report atomically (a temp file renamed into place)."""
    document = render(
        __package__,
        "report.html.j2",
        results=[_result(r) for r in results],
        reference_colour=REF,
        current_colour=CUR,
        width=WIDTH,
        height=HEIGHT,
        axis=AXIS,
    )
    path = path.expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_private_text(path, document)
    except OSError as exc:
        raise DataError(f"cannot write the report {path}: {exc.strerror or exc}") from exc


def _result(result: DriftResult) -> ResultView:
    columns = result.ordered()
    return ResultView(
        title=f"{result.job or 'ad hoc'} — model {result.model}",
        drifted=result.drifted,
        checked_at=f"{result.checked_at:%Y-%m-%d %H:%M UTC}",
        share=_number(result.drift_share, ".2f"),
        required_share=f"{result.required_share:.2f}",
        n_reference=result.n_reference,
        n_current=result.n_current,
        columns=[_column(c) for c in columns],
    )


def _column(column: ColumnDrift) -> ColumnView:
    m = column.metrics
    p_value = m.get("ks_pvalue", m.get("chi2_pvalue"))
    return ColumnView(
        feature=column.feature,
        kind=column.kind,
        drifted=column.drifted,
        method=column.method,
        statistic=_number(column.statistic, ".4g", m.get("undefined")),
        threshold=f"{column.threshold:.4g}",
        psi=_number(m.get("psi"), ".4g"),
        js=_number(m.get("js"), ".4g"),
        p_value="-" if p_value is None else f"{p_value:.3g}",
        missing=f"{column.missing_rate_ref:.1%} / {column.missing_rate_cur:.1%}",
        bars=_bars(column.histogram),
        ticks=_ticks(column.histogram),
        top=f"{max([*column.histogram.reference, *column.histogram.current, 0.0]):.0%}",
    )


def _number(value: float | None, spec: str, why: str | None = None) -> str:
    return format(value, spec) if value is not None else why or "-"


def _ticks(histogram: Histogram) -> list[Tick]:
    """Each bin's label, centred under its pair of bars (cut to LABEL_CHARS; whole on hover)."""
    slot = WIDTH / max(len(histogram.labels), 1)
    return [
        Tick(
            f"{i * slot + slot * 0.5:.1f}",
            label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…",
            label,
        )
        for i, label in enumerate(histogram.labels)
    ]


def _bars(histogram: Histogram) -> list[Bar]:
    """Each bin's reference and current proportions side by side, scaled to the highest."""
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
            bars.append(
                Bar(
                    f"{x + offset:.1f}",
                    f"{HEIGHT - h:.1f}",
                    f"{bar:.1f}",
                    f"{h:.1f}",
                    colour,
                    f"{label}: {name} {value:.1%}",
                )
            )
    return bars
