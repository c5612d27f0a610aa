"""The report's charts, drawn by matplotlib as inline SVG: no script, no font or image to fetch.

Text, axes and grid are drawn in INK, which `_svg` turns into `currentColor`, so an inline chart
takes the page's text colour in the light and in the dark theme; data colours are from the
Okabe-Ito palette, told apart with colour vision deficiencies and readable on both backgrounds.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from markupsafe import Markup

from retrain_cli.core.choices import better
from retrain_cli.core.errors import ConfigError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from retrain_cli.ops.report.model import Event, Heatmap, ModelHistory, Run

INK = "#010203"
BLUE, VERMILION, GREEN, PURPLE, ORANGE, GREY = (
    "#0072B2",
    "#D55E00",
    "#009E73",
    "#CC79A7",
    "#E69F00",
    "#888888",
)
STATUS_COLOURS = {
    "succeeded": GREEN,
    "failed": VERMILION,
    "abandoned": PURPLE,
    "skipped": GREY,
    "running": BLUE,
}
TRIGGER_MARKERS = {"scheduled": "o", "drift": "^", "performance": "v", "age": "s", "manual": "D"}
EVENT_STYLES = {"promote": (GREEN, "-"), "rollback": (PURPLE, "--")}
WIDTH_IN = 9.0
HEAT_MAX = 3.0
RC = {
    "svg.fonttype": "none",  # text stays text: smaller, selectable, searchable
    "svg.hashsalt": "retrain-cli",  # the same history draws the same bytes
    "font.size": 9,
    "font.family": "sans-serif",
    "text.color": INK,
    "axes.edgecolor": INK,
    "axes.labelcolor": INK,
    "xtick.color": INK,
    "ytick.color": INK,
    "grid.color": INK,
    "grid.alpha": 0.15,
    "axes.grid": True,
    "legend.frameon": False,
    "figure.facecolor": "none",
    "axes.facecolor": "none",
    "savefig.facecolor": "none",
    "savefig.transparent": True,
}


@contextmanager
def drawing() -> Iterator[None]:
    """The report's matplotlib settings, for the block only (matplotlib is the `report` extra)."""
    try:
        import matplotlib
    except ImportError as exc:
        raise ConfigError(
            "the report draws its charts with matplotlib: pip install 'retrain-cli[report]'"
        ) from exc
    with matplotlib.rc_context(cast(Any, RC)):  # its typing lists every key as a literal
        yield


def performance(history: ModelHistory) -> Markup:
    """The primary metric over time; its axis and title say which way it improves (an error's
    threshold is a ceiling)."""
    figure, axes = _figure(2.6)
    realized = history.realized
    direction = f" ({better(history.metric)} is better)" if history.metric else ""
    lines = (  # series, colour, width, style, label
        (realized, BLUE, 1.4, "-", f"{history.metric}"),
        (history.estimated, PURPLE, 1.2, "-.", f"{history.metric}, estimated"),
        (history.threshold, VERMILION, 1.0, "--", _threshold(history.metric)),
        (history.baseline, GREEN, 1.0, ":", "hold-out baseline"),
    )
    for series, colour, width, style, name in lines:
        if series.values:
            axes.plot(
                _x(series.times),
                series.values,
                color=colour,
                lw=width,
                ls=style,
                label=name,
                **_few(series.values),
            )
    if history.degraded_at:
        at = dict(zip(realized.times, realized.values, strict=True))
        points = [t for t in history.degraded_at if t in at]
        axes.scatter(
            _x(points), [at[t] for t in points], color=VERMILION, marker="x", s=18, label="degraded"
        )
    for index, changed in enumerate(history.change_points):
        label = "error level changed" if index == 0 else None
        axes.axvline(_x([changed])[0], color=ORANGE, ls=":", lw=1.2, label=label)
    _events(axes, history.events)
    axes.set_ylabel(f"{history.metric or ''}{direction}")
    return _finish(figure, axes, history, f"{history.metric} over time{direction}")


def _threshold(metric: str | None) -> str:
    return "threshold (ceiling)" if metric and better(metric) == "lower" else "threshold"


def drift_share(history: ModelHistory) -> Markup:
    figure, axes = _figure(2.2)
    share = history.drift_share
    axes.plot(
        _x(share.times), share.values, color=BLUE, lw=1.4, label="drift share", **_few(share.values)
    )
    if history.drift_alarm_share is not None:
        axes.axhline(history.drift_alarm_share, color=VERMILION, lw=1, ls="--", label="alarm")
    axes.set_ylim(-0.02, 1.02)
    axes.set_ylabel("share of features")
    _events(axes, history.events)
    return _finish(figure, axes, history, "drift share over time")


def heatmap(history: ModelHistory, map_: Heatmap) -> Markup:
    import numpy as np

    rows = len(map_.features)
    figure, axes = _figure(min(1.2 + 0.22 * rows, 14.0))
    scores = np.array([[np.nan if v is None else v for v in row] for row in map_.scores])
    image = axes.imshow(
        scores,
        aspect="auto",
        interpolation="nearest",
        cmap="viridis",
        vmin=0.0,
        vmax=HEAT_MAX,  # a linear scale, saturated: 1 is the alarm, 3 is far past it
        extent=(*_x([map_.start, map_.end]), rows - 0.5, -0.5),
    )
    labels = [f"{f} ({m})" for f, m in zip(map_.features, map_.methods, strict=True)]
    axes.set_yticks(range(rows), labels)
    axes.grid(False)
    bar = figure.colorbar(image, ax=axes, pad=0.01, fraction=0.03, ticks=[0, 1, 2, 3])
    bar.set_label("score (1 = alarm)")
    bar.outline.set_edgecolor(INK)
    return _finish(figure, axes, history, "drift score per feature", legend=False)


def runs(history: ModelHistory) -> Markup:
    figure, axes = _figure(2.4)
    drawn = [r for r in history.runs if r.duration_s is not None]
    for status, colour in STATUS_COLOURS.items():
        for trigger, marker in TRIGGER_MARKERS.items():
            group = [r for r in drawn if r.status == status and r.trigger == trigger]
            if not group:
                continue
            points = axes.scatter(
                _x([r.started_at for r in group]),
                [max(r.duration_s or 0.0, 0.01) for r in group],
                color=colour,
                marker=marker,
                s=22,
                label=f"{status}, {trigger}",
            )
            points.set_urls([_link(r) for r in group])
    durations = [r.duration_s for r in drawn if r.duration_s]
    if durations and max(durations) > 50 * min(durations):  # minutes and hours on one axis
        axes.set_yscale("log")
    axes.set_ylabel("duration (s)")
    return _finish(figure, axes, history, "runs: start and duration")


def _x(times: list[datetime]) -> Any:
    """Times as matplotlib's date numbers (its typing takes floats, not datetimes)."""
    import matplotlib.dates as mdates

    return mdates.date2num(times)


def _few(values: list[float]) -> dict[str, Any]:
    """Markers on a line of few points, so that a single check still shows."""
    return {"marker": "o", "ms": 3} if len(values) <= 40 else {}


def _link(run: Run) -> str | None:
    """Failures link to their error on the page."""
    return f"#run-{run.id}" if run.error else None


def _figure(height_in: float) -> tuple[Figure, Axes]:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(WIDTH_IN, height_in), layout="constrained")
    return figure, figure.add_subplot()


def _events(axes: Axes, events: list[Event]) -> None:
    """Promotions, rollbacks and every other version event as vertical lines on the time axis."""
    seen = set()
    for event in events:
        colour, style = EVENT_STYLES.get(event.event, (ORANGE, "-."))
        label = event.event if event.event not in seen else None
        seen.add(event.event)
        axes.axvline(_x([event.at])[0], color=colour, ls=style, lw=1, alpha=0.8, label=label)


def _finish(
    figure: Figure, axes: Axes, history: ModelHistory, title: str, legend: bool = True
) -> Markup:
    import matplotlib.dates as mdates

    axes.set_xlim(*_x([history.axis.since, history.axis.now]))
    locator = mdates.AutoDateLocator(maxticks=8)
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    if legend and axes.get_legend_handles_labels()[0]:
        axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    return _svg(figure, title)


def _svg(figure: Figure, title: str) -> Markup:
    """The figure as an inline `<svg>` element, labelled for screen readers (the label escaped
    as Jinja2 escapes, by markupsafe)."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    text = buffer.getvalue()
    text = text[text.index("<svg") :].replace(INK, "currentColor")
    text = text.replace(' target="_blank"', "")  # a failed run's point links within the page
    labelled = Markup('<svg role="img" aria-label="{}" ').format(title)
    return Markup(text.replace("<svg ", labelled, 1))  # matplotlib escapes the text it draws
