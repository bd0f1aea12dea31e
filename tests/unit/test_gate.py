"""The quality gate's checks, one by one."""

from datetime import datetime

from crm_kpis.periods import ReportPeriod
from crm_kpis.quality.gate import GateConfig, check_freshness, check_ranges, check_volume, evaluate

DAY = ReportPeriod.parse("daily", "2026-10-05")  # [10-05 00:00, 10-06 00:00) UTC
CONFIG = GateConfig()


def test_freshness():
    assert check_freshness(DAY, datetime(2026, 10, 5, 23, 50), CONFIG) == []
    assert check_freshness(DAY, datetime(2026, 10, 5, 18, 0), CONFIG) == []  # exactly 6 h: allowed
    late = check_freshness(DAY, datetime(2026, 10, 5, 17, 59), CONFIG)
    assert [(f.level, f.check, f.retryable) for f in late] == [("fail", "freshness", True)]
    assert "6.0 h before the period's end" in late[0].message
    assert [f.level for f in check_freshness(DAY, None, CONFIG)] == ["warn"]  # an empty period is possible


def test_freshness_by_the_sync_when_the_sources_stamp_it():
    # a quiet day: the newest record is 20 h old, but the sync ran 10 minutes before the end: fresh
    assert check_freshness(DAY, datetime(2026, 10, 5, 4, 0), CONFIG, datetime(2026, 10, 5, 23, 50)) == []
    assert check_freshness(DAY, None, CONFIG, datetime(2026, 10, 5, 18, 0)) == []  # 6 h: allowed; no record: no warning
    stalled = check_freshness(DAY, datetime(2026, 10, 5, 23, 0), CONFIG, datetime(2026, 10, 5, 12, 0))
    assert [(f.level, f.check, f.retryable) for f in stalled] == [("fail", "freshness", True)]
    assert stalled[0].message.startswith("the last sync of the sources ran to 2026-10-05 12:00 UTC, 12.0 h before")
    assert "the sync looks stalled" in stalled[0].message


def test_the_gate_judges_synced_sources_by_the_stalest_sync_and_the_others_by_their_records():
    # operations reads a synced helpdesk only (no unstamped record); sales a reference CRM
    staged = {"operations": {"latest_source_ts": "2026-10-05T02:00:00", "latest_sync_ts": "2026-10-05T23:00:00",
                             "latest_unsynced_ts": None},
              "sales": {"latest_source_ts": "2026-10-05T22:00:00", "latest_sync_ts": None,
                        "latest_unsynced_ts": "2026-10-05T22:00:00"}}
    assert [f for f in evaluate(DAY, staged, [], CONFIG) if f.check == "freshness"] == []
    staged["operations"]["latest_sync_ts"] = "2026-10-05T10:00:00"
    assert [f.message.split(",")[0] for f in evaluate(DAY, staged, [], CONFIG) if f.check == "freshness"] == [
        "the last sync of the sources ran to 2026-10-05 10:00 UTC"]
    staged["operations"]["latest_sync_ts"], staged["sales"]["latest_unsynced_ts"] = "2026-10-05T23:00:00", "2026-10-05T09:00:00"
    assert [f.message.split(" is ")[0] for f in evaluate(DAY, staged, [], CONFIG) if f.check == "freshness"] == [
        "newest source record"]  # the unstamped area's own records, not the synced area's


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


def test_plausibility_against_the_kpis_own_history():
    from crm_kpis.quality.gate import check_plausibility

    history = {"sales.revenue": [7.0e6, 7.4e6, 7.7e6, 7.2e6], "operations.fcr_rate": [0.59, 0.60, 0.59, 0.60]}
    # median revenue 7.3 M: 10.0 B is 1,370x → the run stops, naming the KPI and the median
    fail = check_plausibility([v("sales.revenue", 1.0e10)], history, CONFIG)
    assert [(f.level, f.check, f.retryable) for f in fail] == [("fail", "plausibility", False)]
    assert "1,370× above the median of its last 4 periods, 7.3e+06" in fail[0].message
    # 10x: a warning only; a 5 % move of a rate with a tiny MAD is normal (spread ≥ 5 % of the median)
    assert [f.level for f in check_plausibility([v("sales.revenue", 7.3e7)], history, CONFIG)] == ["warn"]
    assert check_plausibility([v("operations.fcr_rate", 0.62)], history, CONFIG) == []
    # 0.595 median, spread max(1.4826 × 0.005, 0.05 × 0.595) = 0.02975: 0.95 is 11.9 spreads away, 0.97 is 12.6
    assert check_plausibility([v("operations.fcr_rate", 0.95)], history, CONFIG) == []
    assert [f.level for f in check_plausibility([v("operations.fcr_rate", 0.97)], history, CONFIG)] == ["warn"]
    # too little history to judge; breakdown members and n/a are not judged
    assert check_plausibility([v("sales.revenue", 1.0e10)], {"sales.revenue": [7e6, 7e6]}, CONFIG) == []
    assert check_plausibility([v("sales.revenue", 1.0e10, "segment", "smb"), v("sales.revenue", None)],
                              history, CONFIG) == []


def test_hard_bounds_and_row_outliers():
    from crm_kpis.quality.gate import check_plausibility, check_row_outliers

    bounded = GateConfig(bounds={"sales.aov": {"min": 0, "max": 50_000}})
    assert [f.level for f in check_plausibility([v("sales.aov", 60_000.0)], {}, bounded)] == ["fail"]
    assert check_plausibility([v("sales.aov", 40_000.0)], {}, bounded) == []
    extremes = {"orders.total_amount": {"max": 9_999_999_999.99, "median": 480.0, "rows": 8000, "key": "812"}}
    fail = check_row_outliers(extremes, CONFIG)
    assert len(fail) == 1 and "row 812 = 9,999,999,999.99 is 20,833,333× the period's median (480.00)" in fail[0].message
    assert check_row_outliers({"orders.total_amount": {"max": 48_000.0, "median": 480.0, "rows": 9, "key": "1"}},
                              CONFIG) == []  # 100x: a large order, not a typo


def test_quality_settings_from_the_config_file():
    import pytest

    config = GateConfig.from_dict({"volume_periods": "6", "plausibility_fail_ratio": 50, "bounds": {"sales.aov": {"max": 9}},
                                   "max_staleness_hours": {"daily": 3}})
    assert (config.volume_periods, config.plausibility_fail_ratio) == (6, 50.0)
    assert config.max_staleness_hours == {"daily": 3.0, "monthly": 24.0} and config.bounds == {"sales.aov": {"max": 9.0}}
    assert GateConfig.from_dict(None) == GateConfig()
    with pytest.raises(ValueError, match="unknown setting.*plausibility_fail_ration"):
        GateConfig.from_dict({"plausibility_fail_ration": 10})


MONTH = ReportPeriod.parse("monthly", "2026-10")


def test_a_period_loaded_twice_is_said_by_its_volume_and_its_repeated_rows():
    from crm_kpis.quality.gate import check_repeats

    recent = [{"orders": 100}, {"orders": 120}, {"orders": 80}, {"orders": 100}]  # usual: 400 / 4 = 100
    assert check_volume({"orders": 179}, recent, CONFIG, "monthly") == []  # 1.79 < 1.8
    (high,) = check_volume({"orders": 200}, recent, CONFIG, "monthly")  # 200 / 100 = 2.0 ≥ 1.8
    assert (high.level, high.check, high.headline) == ("warn", "volume_high", "orders 2.0× the usual rows")
    assert "200 rows, 200% of the usual 100 (mean of the last 4 periods): loaded twice" in high.message
    assert check_volume({"orders": 299}, recent, CONFIG, "daily") == []  # a day's count is noisier: 3× there
    assert "mean of the last 4 same weekdays" in check_volume({"orders": 300}, recent, CONFIG, "daily")[0].message
    assert check_volume({"orders": 500}, recent[:2], CONFIG, "monthly") == []  # two periods: too little to judge
    # the same rows under new ids: 1,000 of 2,000 repeat another's customer, time and amount (50 % > 30 %)
    columns = {"orders": ("customer_id", "ordered_at", "total_amount")}
    (stop,) = check_repeats({"orders": {"rows": 2000, "repeats": 1000}}, columns, CONFIG)
    assert (stop.level, stop.retryable) == ("fail", False)
    assert stop.message.startswith("orders: 1,000 of 2,000 rows (50%) repeat another row's customer_id, ordered_at, "
                                   "total_amount under another key: the period looks loaded twice")
    assert check_repeats({"orders": {"rows": 2000, "repeats": 100}}, columns, CONFIG) == []  # 5 %: not above 5 %
    # a quiet day: 1 of 3 rows repeated (33 %) is too few rows to call a double load: a warning
    assert [f.level for f in check_repeats({"orders": {"rows": 3, "repeats": 1}}, columns, CONFIG)] == ["warn"]
    assert [f.level for f in check_repeats({"orders": {"rows": 40, "repeats": 20}}, columns, CONFIG)] == ["fail"]
    (some,) = check_repeats({"orders": {"rows": 2000, "repeats": 102}}, columns, CONFIG)  # 5.1 %
    assert (some.level, some.headline) == ("warn", "orders: 5% of rows repeated")


def test_one_order_far_beyond_the_largest_of_the_recent_periods_is_a_warning():
    from crm_kpis.quality.gate import check_row_outliers

    history = [{"orders.total_amount": {"max": m, "median": 480.0, "rows": 900, "key": "x"}}
               for m in (40_000.0, 45_000.0, 50_000.0)]
    # 150,000 / 50,000 = 3.0: the largest order typed ten times 15,000
    (warn,) = check_row_outliers({"orders.total_amount": {"max": 150_000.0, "median": 480.0, "rows": 900,
                                                          "key": "8812"}}, CONFIG, history)
    assert warn.level == "warn" and warn.headline == "the largest order 3× the usual largest"
    assert "row 8812 = 150,000.00 is 3.0× the largest of the last 3 periods (50,000.00)" in warn.message
    assert check_row_outliers({"orders.total_amount": {"max": 149_000.0, "median": 480.0, "rows": 900, "key": "1"}},
                              CONFIG, history) == []  # 2.98×
    assert check_row_outliers({"orders.total_amount": {"max": 150_000.0, "median": 480.0, "rows": 900, "key": "1"}},
                              CONFIG, history[:2]) == []  # two periods of history: not judged


def test_a_kpi_three_times_its_usual_is_a_warning_with_words_for_the_subject():
    from crm_kpis.quality.gate import check_plausibility, headline_of, warning_text

    history = {"sales.revenue": [7.0e6, 7.4e6, 7.7e6, 7.2e6], "sales.orders": [5.0, 6.0, 4.0, 5.0],
               "operations.csat": [0.80, 0.82, 0.81, 0.80]}
    # median revenue (7.2 + 7.4) / 2 = 7.3 M; 21.9 M is 3.0×, 14.6 M is 2.0× (the MAD rule's 12 spreads: no)
    (up,) = check_plausibility([v("sales.revenue", 21.9e6)], history, CONFIG)
    assert (up.level, up.headline) == ("warn", "Revenue 3.0× its usual")
    (down,) = check_plausibility([v("sales.revenue", 1.825e6)], history, CONFIG)  # 7.3 / 1.825 = 4
    assert down.headline == "Revenue 1/4.0 of its usual"
    assert check_plausibility([v("sales.revenue", 14.6e6)], history, CONFIG)[0].headline == "Revenue far above its usual"
    # small numbers move by chance: a count whose usual is 5, a rate over 12 answers, are not judged
    assert check_plausibility([v("sales.orders", 50.0)], history, CONFIG) == []
    small = {**v("operations.csat", 0.25), "denominator": 12}
    assert check_plausibility([small], history, CONFIG) == []
    # over 40 answers it is judged: a rate has no "times its usual"; median 0.805, MAD 0.005, spread
    # max(1.4826 × 0.005, 5 % × 0.805) = 0.04025, and |0.25 − 0.805| / 0.04025 = 13.8 ≥ 12 spreads
    assert check_plausibility([{**small, "denominator": 40}], history, CONFIG)[0].headline == \
        "Customer satisfaction (CSAT) far below its usual"
    text = warning_text(up)
    assert text.startswith("plausibility: Revenue 3.0× its usual — sales.revenue = 2.19e+07 is 3.0× the median")
    assert headline_of(text) == "Revenue 3.0× its usual"
    assert headline_of("volume: orders: 5 rows, 40% of the usual 12 (mean of the last 4 periods)") is None
