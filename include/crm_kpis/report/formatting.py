"""Numbers as executives read them: per unit, with n/a for undefined values.

Why in one place: the PDF, the HTML email and the plain-text email must show the same figure the
same way, and values are stored unrounded, so rounding happens only here, for display.
"""

from __future__ import annotations

CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}
NA = "n/a"


def scale_of(*values: float | None) -> float | None:
    """The largest magnitude among the figures shown together (a table row, a breakdown column):
    it decides their precision and time unit, so that one row or column never mixes "$1,832" with
    "−$211.38", or "5.4 h" with "−42 min"."""
    known = [abs(v) for v in values if v is not None and v == v]
    return max(known) if known else None


def _money(value: float, currency: str, digits: int | None = None, scale: float | None = None) -> str:
    """An amount with its currency: cents below 1,000 (of `scale`, the magnitude of the figures shown
    beside it, else of the value), whole units from there; `digits` fixes it (an axis: one for all ticks)."""
    symbol = CURRENCY_SYMBOLS.get(currency)
    reference = abs(value) if scale is None else scale
    digits = (0 if reference >= 1000 else 2) if digits is None else digits
    text = f"{abs(value):,.{digits}f}"
    sign = "−" if value < 0 else ""
    return f"{sign}{symbol}{text}" if symbol else f"{sign}{text} {currency}"


def format_value(value: float | None, unit: str, currency: str = "USD", scale: float | None = None) -> str:
    """One figure; `scale` (scale_of the figures shown with it) picks the precision and time unit."""
    if value is None:
        return NA
    if unit == "money":
        return _money(value, currency, scale=scale)
    if unit == "rate":
        return f"{value * 100:.1f} %"
    if unit == "count":
        return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"
    if unit == "ratio":
        return f"{value:,.2f}"
    if unit == "score":
        return f"{value:,.1f}"
    if unit == "hours":
        return f"{value * 60:.0f} min" if (abs(value) if scale is None else scale) < 1 else f"{value:,.1f} h"
    if unit == "days":
        return f"{value:,.1f} days"
    if unit == "minutes":
        return f"{value:,.1f} min"
    if unit == "seconds":
        return f"{value:,.0f} s"
    return f"{value:,.2f}"


def format_change(current: float | None, previous: float | None, unit: str, currency: str = "USD",
                  scale: float | None = None) -> tuple[str, str]:
    """(absolute change, relative change) as text; rates change in percentage points. The absolute
    change takes the precision and time unit of the figures it compares (`scale`, by default the
    larger of the two): "$2,043 → $1,832" changes by "−$211", not "−$211.38"."""
    if current is None or previous is None:
        return NA, NA
    delta = current - previous
    if unit == "rate":
        absolute = f"{delta * 100:+.1f} pp"
    elif unit == "score":
        absolute = f"{delta:+.1f} pts"
    else:
        absolute = format_value(delta, unit, currency, scale_of(current, previous) if scale is None else scale)
        if delta >= 0:
            absolute = "+" + absolute
    relative = NA if previous == 0 else f"{delta / abs(previous) * 100:+.1f} %"
    return _unsigned_zero(absolute).replace("-", "−"), _unsigned_zero(relative).replace("-", "−")


def shows_zero(text: str) -> bool:
    """True when a formatted change has no non-zero digit ("−0.0 pp"): it reads as no change."""
    return not any(ch in "123456789" for ch in text)


def _unsigned_zero(text: str) -> str:
    return text.lstrip("+-−") if shows_zero(text) and text != NA else text


def change_tone(current: float | None, previous: float | None, better: str | None, unit: str = "ratio") -> str:
    """good, bad or neutral: decided by the KPI's direction, not by the sign of the change.

    A change too small to show at the displayed precision is neutral, not a red "−0.0".
    """
    if current is None or previous is None or better is None or current == previous:
        return "neutral"
    if shows_zero(format_change(current, previous, unit)[0]):
        return "neutral"
    up = current > previous
    return "good" if up == (better == "up") else "bad"


def _decimals(step: float) -> int:
    """Digits after the point that tell ticks `step` apart (0.5 → 1, 0.02 → 2, 20 → 0)."""
    import math

    return max(0, -math.floor(math.log10(abs(step)) + 1e-9)) if step else 0


def axis_labels(ticks: list[float], unit: str, currency: str = "USD") -> list[str]:
    """The tick values of one chart axis in one unit and one precision (format_value picks per value:
    an axis of "30 min, 1.0 h" or "$500.00, $1,000" would mix them)."""
    step = min((b - a for a, b in zip(ticks, ticks[1:], strict=False)), default=0.0)
    if unit == "hours" and max((abs(t) for t in ticks), default=0.0) < 1:
        unit, ticks, step = "minutes", [t * 60 for t in ticks], step * 60
    if unit == "rate":
        digits = _decimals(step * 100)
        return [f"{t * 100:.{digits}f} %" for t in ticks]
    digits = _decimals(step)
    suffix = {"hours": " h", "days": " days", "minutes": " min", "seconds": " s"}.get(unit, "")
    if unit == "money":  # whole units, or cents: never a tenth of a dollar
        return [_money(t, currency, 0 if digits == 0 else 2) for t in ticks]
    return [f"{t:,.{digits}f}{suffix}".replace("-", "−") for t in ticks]
