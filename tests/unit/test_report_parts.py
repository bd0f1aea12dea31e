"""Status against targets, the targets file, and the SVG charts."""

import re
import textwrap

import pytest

from crm_kpis.config.settings import Target, _load, load_settings
from crm_kpis.kpis import REGISTRY
from crm_kpis.report.charts import Series, line_chart, sparkline
from crm_kpis.report.formatting import axis_labels
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


def _line_paths(svg: str) -> list[str]:
    """The `d` of each series' line, in drawing order."""
    return re.findall(r'<g id="[^"]*series_\d+">\s*<path d="([^"]+)"', svg)


def _texts(svg: str) -> list[str]:
    return [t.strip() for t in re.findall(r"<text[^>]*>([^<]+)</text>", svg)]


def test_sparkline_is_vector_with_gaps_for_missing_periods():
    svg = str(sparkline([1.0, 2.0, None, 4.0, 3.0]))
    assert svg.startswith('<svg class="spark"') and 'xmlns="http://www.w3.org/2000/svg"' in svg
    assert 'width="120" height="24" viewBox="0 0 120 24"' in svg
    line = _line_paths(svg)[0]
    assert line.count("M") == 2 and line.count("L") == 2  # a gap splits the line: no line through zero
    xs = [float(x) for x in re.findall(r"[ML] ([\d.]+) ", line)]
    assert xs == sorted(xs)
    assert "<text" not in svg  # no axes, no labels on a tile


def test_trend_chart_labels_stay_inside_are_escaped_and_in_one_unit():
    """The PDF's trend chart at the report's 320 px: the axis in one unit and one precision (whole
    dollars on a million scale, never cents beside them), the last value and the target in the
    margin, the title escaped for screen readers and PDF tags."""
    months = ["Dec", "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov"]
    values = [1.0, 5.0, None, 2.0, 3e6, 4e6, 5e6, 5e6, 5e6, 4.5e6, 5e6, 5.2e6]
    svg = str(line_chart(months, [Series("Revenue", values)], "money", target=4.8e6, title="Revenue <&>",
                         width=320, height=150, max_labels=4))
    assert 'aria-label="Revenue &lt;&amp;&gt;"' in svg and 'role="img"' in svg
    assert _texts(svg) == ["Dec", "Mar", "Jun", "Nov", "$0", "$2,000,000", "$4,000,000", "$6,000,000",
                           "target $4,800,000", "Nov: $5,200,000"]
    assert _line_paths(svg)[0].count("M") == 2  # February has no value: a gap
    assert "<title>Nov: $5,200,000</title>" in svg and "<title>Jan: $5.00</title>" in svg  # hover values


def test_an_axis_of_hours_or_minutes_never_mixes_them():
    months = [f"M{i}" for i in range(6)]
    hours = _texts(str(line_chart(months, [Series("h", [0.5, 0.7, 0.9, 1.2, 1.5, 1.1])], "hours", title="t")))
    assert [t for t in hours if t.endswith((" h", " min"))] == ["0.5 h", "1.0 h", "1.5 h", "M5: 1.1 h"]
    minutes = _texts(str(line_chart(months, [Series("m", [0.3, 0.5, 0.4, 0.45, 0.5, 0.41])], "hours", title="t")))
    assert [t for t in minutes if t.endswith(" min")] == ["15 min", "18 min", "21 min", "24 min", "27 min",
                                                        "30 min", "M5: 25 min"]
    assert axis_labels([0.0, 0.005, 0.01], "rate") == ["0.0 %", "0.5 %", "1.0 %"]
    assert axis_labels([0.0, 500.0, 1000.0, 1500.0], "money", "EUR") == ["€0", "€500", "€1,000", "€1,500"]
    assert axis_labels([0.0, 0.5, 1.0], "money") == ["$0.00", "$0.50", "$1.00"]  # cents, not tenths


def test_several_series_have_a_legend_and_ids_of_their_own():
    labels = ["Jan", "Feb", "Mar"]
    chart = str(line_chart(labels, [Series("Enterprise", [1.0, 2.0, 3.0]),
                                    Series("SMB", [2.0, None, 1.0], dashed=True)], "count", title="Orders"))
    assert "Enterprise" in _texts(chart) and "SMB" in _texts(chart)  # the legend
    assert len(_line_paths(chart)) == 2 and "stroke-dasharray" in chart
    assert "<title>Feb Enterprise: 2</title>" in chart and "Feb SMB" not in chart
    other = str(line_chart(labels, [Series("Revenue", [1.0, 2.0, 4.0])], "money", title="Revenue"))
    ids = lambda svg: set(re.findall(r'id="([^"]+)"', svg))  # noqa: E731
    assert ids(chart) and not ids(chart) & ids(other)  # two charts in one HTML page never share an id
    same = [str(line_chart(labels, [Series("x", [1.0, 2.0, 3.0])], "count")) for _ in range(2)]
    assert not ids(same[0]) & ids(same[1])  # not even the same chart twice (two tiles alike)
    assert re.sub(r"c[0-9a-f]{6}\d+-", "", same[0]) == re.sub(r"c[0-9a-f]{6}\d+-", "", same[1])  # else alike


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


def test_a_member_only_another_kpi_has_is_no_row_and_stages_are_not_ranked():
    import pandas as pd

    from crm_kpis.config.settings import Settings
    from crm_kpis.report.context import BREAKDOWN_COLUMNS, _breakdowns

    # the table's six columns: revenue, orders, average order value, growth, new and active customers
    shown = ["sales.revenue", "sales.orders", "sales.aov", "sales.growth_rate", "sales.new_customers",
             "sales.active_customers"]
    assert len(shown) == BREAKDOWN_COLUMNS
    values = {"smb": (898.05, 2.0, 449.025, 0.1, 1.0, 5.0), "enterprise": (2101.95, 1.0, 2101.95, 0.2, 0.0, 2.0)}
    # an average (with its denominator) compares like for like; the totals do not
    rows = [(k, "", "", 1.0, 3.0 if k == "sales.aov" else None) for k in shown]
    rows += [(k, "segment", m, v, None) for m, vs in values.items() for k, v in zip(shown, vs, strict=True)]
    rows += [
        # a KPI beyond the table's columns has a member "unknown" (opportunities without a segment)
        ("sales.open_opportunities", "", "", 80.0, None), ("sales.open_opportunities", "segment", "unknown", 74.0, None),
        # the stages of one pipeline: the longest is not the "worst"
        ("sales.stage_days", "", "", 6.0, 3.0), ("sales.stage_days", "stage", "proposal", 4.2, 1.0),
        ("sales.stage_days", "stage", "qualification", 12.6, 1.0),
    ]
    frame = pd.DataFrame(rows, columns=["kpi_id", "dimension", "member", "value", "denominator"])
    tables = {t["dimension"]: t for t in _breakdowns(frame, "sales", "monthly", Settings("UTC", "USD", "X"))}
    segment = tables["Customer segment"]
    assert "Open opportunities" not in segment["columns"]
    # before: an "unknown" row of 0 orders and n/a revenue, for a member the shown KPIs do not have
    assert [r["member"] for r in segment["rows"]] == ["enterprise", "smb"]
    revenue, aov = segment["columns"].index("Revenue"), segment["columns"].index("Average order value")
    # one precision per column: $2,101.95 beside $898.05, both in whole dollars
    assert [r["cells"][revenue]["text"] for r in segment["rows"]] == ["$2,102", "$898"]
    assert [r["cells"][aov]["text"] for r in segment["rows"]] == ["$2,102", "$449"]
    # peers are ranked (enterprise's higher average order value is the best) ...
    assert [r["cells"][aov]["mark"] for r in segment["rows"]] == ["best", "worst"]
    # ... the stages of one pipeline are not
    assert {c["mark"] for r in tables["Pipeline stage"]["rows"] for c in r["cells"]} == {""}


def test_a_headline_alternative_stands_in_where_the_first_kpi_is_n_a_and_says_so():
    from crm_kpis.report.context import KpiLine, _headline_tile, alternatives

    def line(kpi_id: str, name: str, value: float | None, note: str = "") -> KpiLine:
        return KpiLine(kpi_id, name, "money", "up", value, None, None, "", "", "", "", "", "neutral", "", "neutral", "",
                       note=note)

    assert alternatives("sales.revenue or sales.bookings") == ["sales.revenue", "sales.bookings"]
    revenue = line("sales.revenue", "Revenue", None, "not tracked: no rows in orders")
    bookings = line("sales.bookings", "Bookings", 1500.0)
    tile = _headline_tile("sales.revenue or sales.bookings", {k.id: k for k in (revenue, bookings)})
    assert (tile.id, tile.value) == ("sales.bookings", 1500.0)
    assert tile.note == "in place of Revenue (not tracked: no rows in orders)"
    # revenue known: revenue's own tile, whatever bookings is
    known = line("sales.revenue", "Revenue", 900.0)
    assert _headline_tile("sales.revenue or sales.bookings", {k.id: k for k in (known, bookings)}) is known
    # neither known: the first, with its own reason
    empty = line("sales.bookings", "Bookings", None, "not tracked: no won opportunities")
    assert _headline_tile("sales.revenue or sales.bookings", {k.id: k for k in (revenue, empty)}) is revenue
