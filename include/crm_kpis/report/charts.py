"""Charts for the PDF report and the KPI history view, drawn by matplotlib as vector SVG.

Why a charting library: the hand-written SVG drew one series without a legend and placed its own
ticks and labels. matplotlib lays out axes, ticks, legends and dashes, and its SVG backend keeps text
as text (`svg.fonttype: none`), so the PDF stays vector, its words searchable and its figures
tagged; WeasyPrint draws the SVG inline. What stays ours is what the reader must be able to trust:
round ticks that cover the values and the target (`nice_ticks`), one unit and one precision per
axis (`formatting.axis_labels`), a missing period drawn as a gap and never as a zero, and the last
value and the target written in the right margin, never on the line.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

from crm_kpis.report.formatting import axis_labels, format_value

LINE = "#1f4e79"
PREDICTED = "#b85c00"
TARGET = "#8a5d00"
GRID = "#d0d7e2"
MUTED = "#666666"
#: colours of further series (members side by side), after LINE: distinct in print and for colour blindness
PALETTE = (LINE, "#b85c00", "#2e7d32", "#6a3d9a", "#c62828", "#00838f", "#7a6a00", "#ad1457")
FONT_PX = 10.0
#: numbers the charts drawn in this process, so that each chart's ids are its own
_CHARTS = itertools.count(1)
STYLE = {"svg.fonttype": "none", "svg.hashsalt": "crm-kpis", "font.family": "DejaVu Sans",
         "font.size": FONT_PX, "axes.edgecolor": MUTED, "axes.linewidth": 0.8, "xtick.color": MUTED,
         "ytick.color": MUTED, "xtick.labelcolor": MUTED, "ytick.labelcolor": MUTED,
         "xtick.major.size": 0, "ytick.major.size": 0, "lines.solid_capstyle": "round",
         "figure.facecolor": "none", "axes.facecolor": "none"}


@dataclass(frozen=True)
class Series:
    """One line: its name (the legend), its values per label (None: no value, drawn as a gap)."""

    name: str
    values: Sequence[float | None]
    dashed: bool = False
    colour: str | None = None


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten) covering [low, high]."""
    if high == low:
        high, low = high + (abs(high) or 1) * 0.5, low - (abs(low) or 1) * 0.5
    raw = (high - low) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(low / step) * step
    ticks = [round(first, 12)]
    while ticks[-1] < high:
        ticks.append(round(first + len(ticks) * step, 12))
    return ticks


def _text_width(text: str, size: float = FONT_PX) -> float:
    """Rough width of DejaVu Sans text, to size the margins before drawing."""
    return len(text) * size * 0.58


def _figure(width: float, height: float):  # type: ignore[no-untyped-def]
    """A figure of `width` x `height` SVG units (matplotlib's SVG is 72 units an inch). No pyplot:
    a Figure of its own draws without a GUI backend or global state, safe in any worker."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width / 72, height / 72), dpi=72)


def _style():  # type: ignore[no-untyped-def]
    """The charts' look, for the drawing and the saving alike (artists read it when created)."""
    import matplotlib

    return matplotlib.rc_context(STYLE)


def _svg(figure, css_class: str, title: str, hover: list[tuple[float, float, str]] = ()) -> Markup:  # type: ignore[no-untyped-def]
    """The figure as an inline `<svg>` element: sized in CSS pixels, named for screen readers and
    PDF tags, its ids made unique to this chart (several sit in one HTML document), and an invisible
    circle over each point whose `<title>` tells its value on hover (the history view)."""
    buffer = io.StringIO()
    with _style():
        figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None}, dpi=72)
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.S)
    svg = re.sub(r'<defs>\s*<style type="text/css">.*?</style>\s*</defs>\s*', "", svg, flags=re.S)
    svg = re.sub(r'style="([^"]*)"', _presentation_attributes, svg)
    width, height = figure.get_size_inches() * 72
    # ids: only those something refers to (clip paths, markers) and the series' own, each made unique
    # in the document (the same chart twice, two sparklines alike, would define one id twice)
    prefix = f"c{hashlib.sha1(svg.encode()).hexdigest()[:6]}{next(_CHARTS)}-"
    referred = set(re.findall(r'(?:href="#|url\(#)([^")]+)', svg))
    svg = re.sub(r'\sid="([^"]+)"', lambda m: f' id="{prefix}{m.group(1)}"'
                 if m.group(1) in referred or m.group(1).startswith("series_") else "", svg)
    svg = re.sub(r'(href|xlink:href)="#([^"]+)"', rf'\1="#{prefix}\2"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", rf"url(#{prefix}\1)", svg)
    svg = re.sub(r"<svg [^>]*>", (f'<svg class="{css_class}" xmlns="http://www.w3.org/2000/svg" '
                                  f'xmlns:xlink="http://www.w3.org/1999/xlink" width="{width:.0f}" '
                                  f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
                                  f'aria-label="{escape(title)}">'), svg, count=1)
    dots = "".join(f'<circle cx="{x:.2f}" cy="{y:.2f}" r="4" fill="{LINE}" fill-opacity="0">'
                   f"<title>{escape(text)}</title></circle>" for x, y, text in hover)
    return Markup(svg.replace("</svg>", f"{dots}</svg>"))


def _presentation_attributes(match: re.Match[str]) -> str:
    """`style="fill: none; stroke: #1f4e79"` as `fill="none" stroke="#1f4e79"`: the same drawing, but
    WeasyPrint reads a style attribute as HTML CSS first and warned about every SVG property in it
    (two thousand log lines for one demo run)."""
    pairs = (part.split(":", 1) for part in match.group(1).split(";") if ":" in part)
    return " ".join(f'{name.strip()}="{value.strip()}"' for name, value in pairs)


def _points(values: Sequence[float | None]) -> tuple[list[float], list[float]]:
    """x and y of a series, a missing value as NaN: matplotlib breaks the line there."""
    return list(range(len(values))), [math.nan if v is None else float(v) for v in values]


def sparkline(values: Sequence[float | None], width: int = 120, height: int = 24) -> Markup:
    """A line over the last periods with the current (last) value marked; no axes, a gap where a
    period has no value; nothing when there is no value at all."""
    with _style():
        return _draw_sparkline(values, width, height)


def _draw_sparkline(values: Sequence[float | None], width: int, height: int) -> Markup:
    xs, ys = _points(values)
    figure = _figure(width, height)
    axes = figure.add_axes((0.02, 0.1, 0.96, 0.8))
    axes.set_axis_off()
    known = [(x, y) for x, y in zip(xs, ys, strict=True) if not math.isnan(y)]
    if known:
        axes.plot(xs, ys, color=LINE, linewidth=1.2, solid_joinstyle="round", gid="series_0")
        lonely = [(x, y) for x, y in known if all(math.isnan(ys[i]) for i in (x - 1, x + 1) if 0 <= i < len(ys))]
        if lonely:  # a value between two gaps is a dot, not nothing
            axes.plot(*zip(*lonely, strict=True), linestyle="none", marker="o", markersize=2, color=LINE)
        axes.plot([known[-1][0]], [known[-1][1]], marker="o", markersize=3.5, color=LINE)
    axes.set_xlim(-0.3, max(len(values) - 1, 1) + 0.3)
    return _svg(figure, "spark", "trend")


def line_chart(labels: Sequence[str], series: Sequence[Series], unit: str, currency: str = "USD", *,
               target: float | None = None, target_text: str = "", title: str = "", width: int = 760,
               height: int = 260, max_labels: int = 8, from_zero: bool = False) -> Markup:
    """Lines over the same periods on one value axis: round ticks in one unit, up to `max_labels`
    period labels (the last one always), the target as a dashed line, a legend when there is more
    than one series, and in the right margin the last value (one series) and the target's label."""
    with _style():
        return _draw_line_chart(labels, series, unit, currency, target, target_text, title, width, height,
                                max_labels, from_zero)


def _draw_line_chart(labels: Sequence[str], series: Sequence[Series], unit: str, currency: str,
                     target: float | None, target_text: str, title: str, width: int, height: int,
                     max_labels: int, from_zero: bool) -> Markup:
    known = [v for s in series for v in s.values if v is not None]
    span = known + ([target] if target is not None else []) + ([0.0] if from_zero else [])
    ticks = nice_ticks(min(span), max(span)) if span else [0.0, 1.0]
    tick_text = axis_labels(ticks, unit, currency)
    single = series[0] if len(series) == 1 else None
    last = next(((i, v) for i, v in reversed(list(enumerate(single.values))) if v is not None), None) if single else None
    last_text = f"{labels[last[0]]}: {format_value(last[1], unit, currency)}" if last else ""
    target_label = (target_text or f"target {format_value(target, unit, currency)}") if target is not None else ""
    legend_h = 16 if len(series) > 1 else 0
    top, bottom = 10 + legend_h, 26
    left = max(40.0, max(_text_width(t) for t in tick_text) + 12)
    right = min(max(_text_width(last_text), _text_width(target_label), 30.0) + 14, width * 0.45)

    figure = _figure(width, height)
    axes = figure.add_axes((left / width, bottom / height, (width - left - right) / width,
                            (height - top - bottom) / height))
    axes.set_ylim(ticks[0], ticks[-1])
    axes.set_yticks(ticks, tick_text)
    # half a period of room at each end: the first period's label clears the value axis and its labels
    axes.set_xlim(-0.5 if len(labels) > 1 else -1, len(labels) - 0.5 if len(labels) > 1 else 1)
    every = max(1, -(-len(labels) // max_labels))
    shown = sorted({*range(0, len(labels), every), len(labels) - 1}) if labels else []
    if len(shown) > 1 and shown[-1] - shown[-2] < every:  # the last label would touch the one before it
        shown.pop(-2)
    axes.set_xticks(shown, [labels[i] for i in shown])
    axes.grid(axis="y", color=GRID, linewidth=0.8)
    axes.set_axisbelow(True)
    for side in ("top", "right", "bottom"):
        axes.spines[side].set_visible(False)
    axes.tick_params(axis="y", pad=4, labelsize=FONT_PX)
    axes.tick_params(axis="x", pad=6, labelsize=FONT_PX)

    hover: list[tuple[float, float, str]] = []
    for n, s in enumerate(series):
        colour = s.colour or PALETTE[n % len(PALETTE)]
        xs, ys = _points(s.values)
        axes.plot(xs, ys, color=colour, linewidth=1.8, linestyle=(0, (6, 4)) if s.dashed else "-",
                  marker="o", markersize=4.5, label=s.name, clip_on=False, gid=f"series_{n}")
    if target is not None:
        axes.axhline(target, color=TARGET, linewidth=1.2, linestyle=(0, (5, 4)))
    margin = ([(target, target_label, TARGET)] if target is not None else []) + \
        ([(last[1], last_text, series[0].colour or LINE)] if last else [])
    scale = (height - top - bottom) / ((ticks[-1] - ticks[0]) or 1)
    if len(margin) == 2 and abs(margin[0][0] - margin[1][0]) * scale < 13:  # keep both readable
        (y0, t0, c0), (y1, t1, c1) = sorted(margin, key=lambda m: m[0])
        middle = (y0 + y1) / 2
        margin = [(middle - 7 / scale, t0, c0), (middle + 7 / scale, t1, c1)]
    for y, text, colour in margin:
        axes.annotate(text, xy=(1, y), xycoords=("axes fraction", "data"), xytext=(6, 0),
                      textcoords="offset points", va="center", ha="left", color=colour, fontsize=FONT_PX,
                      annotation_clip=False)
    if len(series) > 1:
        figure.legend(loc="upper left", bbox_to_anchor=(left / width, 1), ncols=min(len(series), 4),
                      frameon=False, fontsize=FONT_PX, handlelength=2.2, borderaxespad=0.2)
    for s in series:  # each point tells its value on hover (after layout: the axes' transform is final)
        for i, v in enumerate(s.values):
            if v is not None:
                x, y = axes.transData.transform((i, v))
                hover.append((x, height - y, f"{labels[i]}{' ' + s.name if len(series) > 1 else ''}: "
                                             f"{format_value(v, unit, currency)}"))
    return _svg(figure, "trend", title, hover)
