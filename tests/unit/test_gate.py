"""The quality gate's checks, one by one."""

from datetime import datetime

from crm_kpis.gate import GateConfig, check_freshness, check_ranges, check_volume, evaluate
from crm_kpis.periods import ReportPeriod

DAY = ReportPeriod.parse("daily", "2026-10-05")  # [10-05 00:00, 10-06 00:00) UTC
CONFIG = GateConfig()


def test_freshness():
    assert check_freshness(DAY, datetime(2026, 10, 5, 23, 50), CONFIG) == []
    assert check_freshness(DAY, datetime(2026, 10, 5, 18, 0), CONFIG) == []  # exactly 6 h: allowed
    late = check_freshness(DAY, datetime(2026, 10, 5, 17, 59), CONFIG)
    assert [(f.level, f.check, f.retryable) for f in late] == [("fail", "freshness", True)]
    assert "6.0 h before the period's end" in late[0].message
    assert [f.level for f in check_freshness(DAY, None, CONFIG)] == ["warn"]  # an empty period is possible


def test_volume():
    recent = [{"orders": 100}, {"orders": 120}, {"orders": 80}, {"orders": 100}]  # usual: 100
    assert check_volume({"orders": 60}, recent, CONFIG) == []
    assert [f.level for f in check_volume({"orders": 49}, recent, CONFIG)] == ["warn"]
    fail = check_volume({"orders": 19}, recent, CONFIG)
    assert [(f.level, f.retryable) for f in fail] == [("fail", True)] and "19 rows, 19% of the usual 100" in fail[0].message
    assert check_volume({"orders": 0}, [], CONFIG) == []  # no history yet: nothing to compare


def v(kpi_id, value, dimension="", member=""):
    return {"kpi_id": kpi_id, "value": value, "dimension": dimension, "member": member}


def test_ranges():
    ok = [v("operations.csat", 1.0), v("marketing.nps", -100.0), v("marketing.roi", -0.9), v("sales.growth_rate", -0.5),
          v("marketing.lead_conversion_rate", 2.0), v("operations.ces", 7.0), v("sales.orders", 0.0), v("sales.churn_rate", None)]
    assert check_ranges(ok) == []
    bad = check_ranges([v("operations.csat", 1.2), v("marketing.nps", 101.0), v("sales.orders", -1.0),
                        v("operations.ces", 0.5), v("sales.revenue", -3.0, "segment", "smb")])
    assert [f.message.split(" ")[0] for f in bad] == ["operations.csat", "marketing.nps", "sales.orders",
                                                     "operations.ces", "sales.revenue"]
    assert all(f.level == "fail" and not f.retryable for f in bad)
    assert "(segment=smb)" in bad[-1].message


def test_evaluate_merges_areas():
    staged = {
        "sales": {"values": [v("sales.orders", 5.0)], "rows_read": {"orders": 5}, "latest_source_ts": "2026-10-05T23:00:00"},
        "operations": {"values": [v("operations.csat", 0.9)], "rows_read": {"tickets_created": 2},
                       "latest_source_ts": "2026-10-05T23:59:00"},
    }
    assert evaluate(DAY, staged, [{"orders": 100, "tickets_created": 3}], CONFIG)[0].message.startswith("orders: 5 rows")
    assert GateConfig.from_dict({"max_staleness_hours": {"daily": 2}}).max_staleness_hours == {"daily": 2, "monthly": 24.0}
