"""Status against targets, the targets file, and the SVG charts."""

import re
import textwrap

import pytest

from crm_kpis.config.settings import Target, _load, load_settings
from crm_kpis.kpis import REGISTRY
from crm_kpis.report.charts import axis_chart, sparkline
from crm_kpis.report.status import status


@pytest.mark.parametrize(("value", "target", "better", "expected"), [
    (0.95, Target(0.9, 0.8), "up", "on_target"),
    (0.90, Target(0.9, 0.8), "up", "on_target"),  # exactly the target is on target
    (0.85, Target(0.9, 0.8), "up", "at_risk"),
    (0.79, Target(0.9, 0.8), "up", "off_target"),
    (0.02, Target(0.03, 0.035), "down", "on_target"),  # churn: lower is better
    (0.033, Target(0.03, 0.035), "down", "at_risk"),
    (0.04, Target(0.03, 0.035), "down", "off_target"),
    (96.0, Target(100.0), "up", "at_risk"),  # default margin: 5 % of the target
    (94.0, Target(100.0), "up", "off_target"),
    (104.0, Target(100.0), "down", "at_risk"),
    (None, Target(0.9), "up", None),  # n/a value: no status
    (0.5, None, "up", None),  # no target: no made-up status
    (0.5, Target(0.9), None, None),  # no direction: no status
])
def test_status(value, target, better, expected):
    assert status(value, target, better) == expected


def test_shipped_targets_name_real_kpis_of_their_grain():
    settings = load_settings()
    assert settings.targets, "the shipped configuration has targets"
    for grain, targets in settings.targets.items():
        for kpi_id in targets:
            assert kpi_id in REGISTRY and REGISTRY[kpi_id].applies_to(grain), (grain, kpi_id)
            assert REGISTRY[kpi_id].better, f"{kpi_id} has no direction, so a target cannot give a status"


def test_member_targets_and_config_errors(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text(textwrap.dedent("""
        targets:
          monthly:
            sales.revenue: {target: 100, members: {segment: {smb: {target: 40, at_risk: 30}}}}
    """))
    settings = _load(str(good), 0.0)
    assert settings.target_for("monthly", "sales.revenue", "segment", "smb") == Target(40.0, 30.0)
    assert settings.target_for("monthly", "sales.revenue", "segment", "enterprise") is None
    assert settings.target_for("daily", "sales.revenue") is None
    bad = tmp_path / "bad.yaml"
    bad.write_text("targets:\n  monthly:\n    sales.revenue: {at_risk: 3}\n")
    with pytest.raises(ValueError, match=r"targets\.monthly\.sales\.revenue\.target: required, and missing"):
        _load(str(bad), 0.0)
    bad.write_text("targets:\n  weekly:\n    sales.revenue: {target: 3}\n")
    with pytest.raises(ValueError, match=r"targets\.weekly: Input should be 'daily' or 'monthly'"):
        _load(str(bad), 0.0)


def test_sparkline_is_vector_with_gaps_for_missing_periods():
    svg = str(sparkline([1.0, 2.0, None, 4.0, 3.0]))
    assert svg.startswith("<svg") and 'xmlns="http://www.w3.org/2000/svg"' in svg
    lines = re.findall(r'<polyline points="([^"]+)"', svg)
    assert [len(p.split()) for p in lines] == [2, 2]  # a gap splits the line, no line through zero
    xs = [float(pt.split(",")[0]) for p in lines for pt in p.split()]
    assert xs == sorted(xs)


def test_trend_chart_labels_stay_inside_and_are_escaped():
    """The PDF's trend chart (axis_chart at the report's 320 px): every label whole inside the chart,
    long money values with cents included, and the title escaped."""
    months = ["Dec", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov"]
    values = [1.0, 5.0, None, 2.0, 3e6, 4e6, 5e6, 5e6, 5e6, 4.5e6, 5e6, 5.2e6]
    svg = str(axis_chart(months, values, lambda v: f"${v:,.2f}", target=4.8e6, title="Revenue <&>",
                         width=320, height=150, max_labels=4))
    assert "Revenue &lt;&amp;&gt;" in svg
    texts = re.findall(r'<text x="(-?[\d.]+)" y="[^"]*" font-size="([\d.]+)"[^>]*>([^<]*)</text>', svg)
    assert len(texts) >= 8
    for x, size, text in texts:
        assert float(x) >= 0 and float(x) + len(text) * float(size) * 0.58 <= 320 + 1, (x, text)


def test_a_count_without_a_row_for_a_member_is_zero_and_a_rate_stays_undefined():
    import pandas as pd

    from crm_kpis.config.settings import Settings
    from crm_kpis.report.context import _breakdowns

    rows = pd.DataFrame([
        # backlog: no open social cases, so no social row; the resolution time has a social row
        ("operations.backlog", "", "", 5.0), ("operations.backlog", "ticket_channel", "email", 5.0),
        ("operations.tickets_solved", "", "", 9.0), ("operations.tickets_solved", "ticket_channel", "email", 7.0),
        ("operations.tickets_solved", "ticket_channel", "social", 2.0),
        ("operations.solved_same_day_rate", "", "", 0.5),
        ("operations.solved_same_day_rate", "ticket_channel", "email", 0.5),
    ], columns=["kpi_id", "dimension", "member", "value"])
    table = _breakdowns(rows, "operations", "monthly", Settings("UTC", "USD", "X"))[0]
    cells = {row["member"]: dict(zip(table["columns"], (c["text"] for c in row["cells"]), strict=True))
             for row in table["rows"]}
    assert cells["social"]["Open cases"] == "0"  # a real zero: the channel exists, no case is open
    assert cells["social"]["Closed the same day"] == "n/a"  # a rate without cases is undefined
