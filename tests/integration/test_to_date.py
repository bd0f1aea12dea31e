"""Year and quarter to date on the monthly report, by hand: only flows (their months add up), the
sums of the published months, n/a with the months missing, against the same months a year ago."""

from __future__ import annotations

from datetime import date

from crm_kpis.history.store import kpi_history
from crm_kpis.periods import ReportPeriod
from crm_kpis.report.to_date import to_date

NOW = date(2026, 6, 1)


def _store(warehouse, rows: list[tuple[str, date, float]]) -> None:
    with warehouse.begin() as conn:
        conn.execute(kpi_history.insert(), [
            {"kpi_id": k, "grain": "monthly", "period_start": d, "period_end": d, "timezone": "UTC", "dimension": "",
             "member": "", "value": v, "numerator": None, "denominator": None, "run_id": "r", "computed_at": NOW}
            for k, d, v in rows])


def test_sums_of_the_published_months_for_flows_only(warehouse):
    # revenue: Jan–May 2026 = 10 + 20 + 30 + 40 + 50 = 150; Q2 (Apr–May) = 90;
    # a year earlier Jan–May 2025 = 5 × 6 = 30 → +400.0 %. Orders: March is missing → n/a.
    _store(warehouse, [("sales.revenue", date(2026, m, 1), 10.0 * m) for m in range(1, 6)]
           + [("sales.revenue", date(2025, m, 1), 6.0) for m in range(1, 6)]
           + [("sales.orders", date(2026, m, 1), 1.0) for m in (1, 2, 4, 5)]
           + [("sales.mrr", date(2026, m, 1), 100.0) for m in range(1, 6)])
    table = to_date(warehouse, ReportPeriod.parse("monthly", "2026-05"), "USD")
    rows = {r["name"]: r for r in table["rows"]}
    assert (table["year_label"], table["year_ago_label"], table["quarter_label"]) == (
        "Jan–May 2026", "Jan–May 2025", "Q2 2026 (Apr–May)")
    assert {k: rows["Revenue"][k] for k in ("ytd", "year_ago", "change", "qtd")} == {
        "ytd": "$150.00", "year_ago": "$30.00", "change": "+400.0 %", "qtd": "$90.00"}
    # only Orders lacks March: said in its own cell; a year earlier only Revenue has months
    assert rows["Orders"]["ytd"] == "n/a (1 of 5 months missing)" and rows["Orders"]["qtd"] == "2"
    assert rows["Orders"]["year_ago"] == "n/a (5 of 5 months missing)" and table["notes"] == []
    assert "Monthly recurring revenue" not in rows  # a stock: its months do not add up


def test_a_daily_report_has_no_year_to_date(warehouse):
    assert to_date(warehouse, ReportPeriod.parse("daily", "2026-05-05"), "USD") is None


def test_months_the_history_does_not_have_are_said_once_under_the_table(warehouse):
    # every flow has September and October 2026 only: Jan–Aug 2026 and all of Jan–Oct 2025 are not in
    # the history, so the cells are plain n/a and two notes say why; Q4 (October) is whole
    _store(warehouse, [(k, date(2026, m, 1), v) for k, v in (("sales.revenue", 1500.0), ("sales.orders", 3.0))
                       for m in (9, 10)])
    table = to_date(warehouse, ReportPeriod.parse("monthly", "2026-10"), "USD")
    rows = {r["name"]: r for r in table["rows"]}
    assert {k: rows["Revenue"][k] for k in ("ytd", "year_ago", "change", "qtd")} == {
        "ytd": "n/a", "year_ago": "n/a", "change": "n/a", "qtd": "$1,500"}
    assert table["notes"] == [
        "Jan–Oct 2026: n/a, 8 of its 10 months not in the history (Jan–Aug 2026); `make backfill` computes past months",
        "Jan–Oct 2025: n/a, 10 of its 10 months not in the history (Jan–Oct 2025); `make backfill` computes past months"]


def test_missing_months_are_said_as_ranges():
    from crm_kpis.report.to_date import month_ranges

    assert month_ranges((date(2025, 11, 1), date(2025, 12, 1), date(2026, 1, 1), date(2026, 4, 1))) == \
        "Nov 2025–Jan 2026, Apr 2026"
    assert month_ranges((date(2026, 3, 1),)) == "Mar 2026"
