"""Status against target: on target, at risk, off target, decided by the KPI's direction.

Why explicit: a KPI without a configured target shows no status rather than a made-up one, and
"better" is the KPI's declared direction (lower churn is better), never the sign of a number.
"""

from __future__ import annotations

from crm_kpis.config.settings import Target

LABELS = {"on_target": "On target", "at_risk": "At risk", "off_target": "Off target"}
DEFAULT_MARGIN = 0.05  # without `at_risk`: 5 % of the target


def status(value: float | None, target: Target | None, better: str | None) -> str | None:
    if value is None or target is None or better not in ("up", "down"):
        return None
    margin = target.at_risk
    if margin is None:
        slack = DEFAULT_MARGIN * abs(target.target)
        margin = target.target - slack if better == "up" else target.target + slack
    if better == "up":
        return "on_target" if value >= target.target else "at_risk" if value >= margin else "off_target"
    return "on_target" if value <= target.target else "at_risk" if value <= margin else "off_target"
