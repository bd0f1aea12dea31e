"""Small SVG charts for the PDF: sparklines on the headline tiles and trend charts per area.

Why SVG written here rather than a plotting library: the charts are a few lines and dots, and as
vectors they stay sharp at any zoom and in print; WeasyPrint renders inline SVG directly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from markupsafe import Markup, escape

LINE = "#1f4e79"
GRID = "#d0d7e2"
MUTED = "#666666"


def _segments(points: list[tuple[float, float] | None]) -> list[list[tuple[float, float]]]:
    """Runs of consecutive known points: a missing period is a gap, not a line through zero."""
    runs: list[list[tuple[float, float]]] = [[]]
    for p in points:
        if p is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append(p)
    return [r for r in runs if r]


def _scale(values: Sequence[float | None], width: float, height: float, pad: float) -> list[tuple[float, float] | None]:
    known = [v for v in values if v is not None]
    if not known:
        return [None] * len(values)
    low, high = min(known), max(known)
    span = (high - low) or 1.0
    step = (width - 2 * pad) / max(len(values) - 1, 1)
    out: list[tuple[float, float] | None] = []
    for i, v in enumerate(values):
        if v is None:
            out.append(None)
        else:
            y = height - pad - (v - low) / span * (height - 2 * pad) if high != low else height / 2
            out.append((round(pad + i * step, 2), round(y, 2)))
    return out


def _polylines(points: list[tuple[float, float] | None], width: float) -> str:
    parts = []
    for run in _segments(points):
        coords = " ".join(f"{x},{y}" for x, y in run)
        if len(run) == 1:
            x, y = run[0]
            parts.append(f'<circle cx="{x}" cy="{y}" r="1.2" fill="{LINE}"/>')
        else:
            parts.append(f'<polyline points="{coords}" fill="none" stroke="{LINE}" stroke-width="{width}" '
                         f'stroke-linejoin="round" stroke-linecap="round"/>')
    return "".join(parts)


def sparkline(values: Sequence[float | None], width: int = 120, height: int = 24) -> Markup:
    """A line over the last periods with the current (last) value marked; empty when no history."""
    points = _scale(values, width, height, 2.5)
    last = points[-1] if points else None
    marker = f'<circle cx="{last[0]}" cy="{last[1]}" r="2" fill="{LINE}"/>' if last else ""
    return Markup(
        f'<svg class="spark" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="trend">{_polylines(points, 1.2)}{marker}</svg>'
    )


def _text_width(text: str, size: float) -> float:
    """Rough width of DejaVu Sans text: enough to place labels without relying on text-anchor."""
    return len(text) * size * 0.58


def _label_start(x: float, text: str, size: float, width: float) -> float:
    """Start of text centred on x but kept inside [0, width]."""
    return min(max(x - _text_width(text, size) / 2, 1.0), width - _text_width(text, size) - 1.0)


def _label(x: float, y: float, text: str, size: float, width: float, fill: str = "#1a1a1a") -> str:
    """Text centred on x but kept inside [0, width] (explicit start position, no text-anchor)."""
    start = _label_start(x, text, size, width)
    return f'<text x="{start:.1f}" y="{y:.1f}" font-size="{size}" fill="{fill}">{escape(text)}</text>'


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten) covering [low, high]."""
    import math

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


def _axes(ticks: Sequence[float], labels: Sequence[str], tick_text: Callable[[float], str],
          y_of: Callable[[float], float], x_of: Callable[[int], float], left: float, plot_w: float,
          width: float, height: float, max_labels: int = 8) -> list[str]:
    """Grid lines with their round values on the left, and up to `max_labels` labels along the bottom."""
    parts = []
    for t in ticks:
        y = y_of(t)
        parts.append(f'<line x1="{left}" y1="{y}" x2="{left + plot_w}" y2="{y}" stroke="{GRID}"/>')
        text = escape(tick_text(t))
        parts.append(f'<text x="{left - 6 - _text_width(str(text), 10):.1f}" y="{y + 3.5:.1f}" font-size="10" '
                     f'fill="{MUTED}">{text}</text>')
    every = max(1, -(-len(labels) // max_labels))  # at most max_labels labels, the last one always
    shown = sorted({*range(0, len(labels), every), len(labels) - 1}) if labels else []
    drawn: list[tuple[float, int]] = []  # (start, index) of each label kept, from the last one back
    for i in reversed(shown):
        start = _label_start(x_of(i), labels[i], 10, width)
        if drawn and start + _text_width(labels[i], 10) + 4 > drawn[-1][0]:
            continue  # would touch the label to its right
        drawn.append((start, i))
    parts.extend(_label(x_of(i), height - 8, labels[i], 10, width, MUTED) for _, i in reversed(drawn))
    return parts


PREDICTED = "#b85c00"


def comparison_chart(labels: Sequence[str], actual: Sequence[float], predicted: Sequence[float],
                     tick_text: Callable[[float], str], title: str, width: int = 520, height: int = 220) -> Markup:
    """What happened (solid) against what a model predicted (dashed), from zero, with a legend: the
    holdout check of the lifetime-value models (Fader, Hardie & Lee 2005, figure 4)."""
    left, top, bottom, right = 74, 26, 26, 16
    plot_w, plot_h = width - left - right, height - top - bottom
    ticks = nice_ticks(0.0, max([*actual, *predicted, 1.0]))
    high = ticks[-1]
    step_x = plot_w / max(len(labels) - 1, 1)

    def x_of(i: int) -> float:
        return round(left + i * step_x, 2)

    def y_of(v: float) -> float:
        return round(top + plot_h - v / (high or 1) * plot_h, 2)

    parts = _axes(ticks, labels, tick_text, y_of, x_of, left, plot_w, width, height)
    for values, colour, dash, name in ((actual, LINE, "", "actual"), (predicted, PREDICTED, ' stroke-dasharray="6 4"',
                                                                       "predicted")):
        coords = " ".join(f"{x_of(i)},{y_of(v)}" for i, v in enumerate(values))
        parts.append(f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="1.8"{dash}/>')
        parts.extend(f'<circle cx="{x_of(i)}" cy="{y_of(v)}" r="2.4" fill="{colour}"><title>{escape(labels[i])} '
                     f'{name}: {escape(tick_text(v))}</title></circle>' for i, v in enumerate(values))
    legend = (f'<line x1="{left}" y1="14" x2="{left + 22}" y2="14" stroke="{LINE}" stroke-width="1.8"/>'
              f'<text x="{left + 26}" y="17.5" font-size="10" fill="#1a1a1a">actual</text>'
              f'<line x1="{left + 74}" y1="14" x2="{left + 96}" y2="14" stroke="{PREDICTED}" stroke-width="1.8" '
              f'stroke-dasharray="6 4"/><text x="{left + 100}" y="17.5" font-size="10" fill="#1a1a1a">predicted</text>')
    return Markup(
        f'<svg class="trend" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">{legend}'
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="{MUTED}"/>{"".join(parts)}</svg>'
    )


def axis_chart(labels: Sequence[str], values: Sequence[float | None], tick_text: Callable[[float], str],
               target: float | None = None, target_text: str = "", title: str = "",
               width: int = 760, height: int = 260, max_labels: int = 8) -> Markup:
    """A line chart with a y axis of round values, up to eight period labels, the target as a dashed
    line, and every label in the margins, never on the line; each point tells its value on hover."""
    known = [v for v in values if v is not None]
    span = known + ([target] if target is not None else [])
    last = next(((i, v) for i, v in reversed(list(enumerate(values))) if v is not None), None)
    last_text = f"{labels[last[0]]}: {tick_text(last[1])}" if last is not None else ""
    target_label = (target_text or f"target {tick_text(target)}") if target is not None else ""
    ticks = nice_ticks(min(span), max(span)) if span else [0.0, 1.0]
    # the margins hold every label whole: the widest tick value on the left, the last value and the
    # target's label on the right (a small chart in the PDF has room for the plot, whatever the unit)
    top, bottom = 12, 26
    left = int(max(40, max(_text_width(tick_text(t), 10) for t in ticks) + 12))
    right = int(min(max(_text_width(last_text, 10), _text_width(target_label, 10), 40) + 14, width * 0.45))
    plot_w, plot_h = width - left - right, height - top - bottom
    low, high = ticks[0], ticks[-1]
    step_x = plot_w / max(len(values) - 1, 1)

    def x_of(i: int) -> float:
        return round(left + i * step_x, 2)

    def y_of(v: float) -> float:
        return round(top + plot_h - (v - low) / ((high - low) or 1) * plot_h, 2)

    parts = _axes(ticks, labels, tick_text, y_of, x_of, left, plot_w, width, height, max_labels)
    margin = []  # labels in the right margin: (y, text, colour)
    if target is not None:
        y = y_of(target)
        parts.append(f'<line x1="{left}" y1="{y}" x2="{left + plot_w}" y2="{y}" stroke="#8a5d00" '
                     f'stroke-dasharray="5 4" stroke-width="1.2"/>')
        margin.append([y, target_label, "#8a5d00"])
    points = [None if v is None else (x_of(i), y_of(v)) for i, v in enumerate(values)]
    parts.append(_polylines(points, 1.8))
    for i, p in enumerate(points):
        if p is not None:
            parts.append(f'<circle cx="{p[0]}" cy="{p[1]}" r="2.6" fill="{LINE}"><title>{escape(labels[i])}: '
                         f'{escape(tick_text(values[i]))}</title></circle>')  # type: ignore[arg-type]
    if last is not None:
        margin.append([y_of(last[1]), last_text, LINE])
    if len(margin) == 2 and abs(margin[0][0] - margin[1][0]) < 13:  # keep both readable
        upper, lower = sorted(margin, key=lambda m: m[0])
        upper[0], lower[0] = (upper[0] + lower[0]) / 2 - 7, (upper[0] + lower[0]) / 2 + 7
    for y, text, colour in margin:
        parts.append(f'<text x="{left + plot_w + 6}" y="{y + 3.5:.1f}" font-size="10" fill="{colour}">'
                     f'{escape(text)}</text>')
    return Markup(
        f'<svg class="trend" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">'
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="{MUTED}"/>{"".join(parts)}</svg>'
    )
