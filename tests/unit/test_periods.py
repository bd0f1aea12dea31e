from datetime import UTC, date, datetime

import pytest

from crm_kpis.periods import PeriodError, ReportPeriod

UTC = UTC


def test_monthly_bounds_in_utc():
    p = ReportPeriod.parse("monthly", "2026-10")
    assert (p.start_date, p.end_date) == (date(2026, 10, 1), date(2026, 11, 1))
    assert (p.utc_start, p.utc_end) == (datetime(2026, 10, 1), datetime(2026, 11, 1))
    assert p.days == 31 and p.key == "2026-10" and p.label == "October 2026"


def test_daily_period_in_berlin_is_converted_to_utc_bounds():
    # 2026-07-15 00:00 CEST (UTC+2) is 2026-07-14 22:00 UTC
    p = ReportPeriod("daily", date(2026, 7, 15), "Europe/Berlin")
    assert p.utc_start == datetime(2026, 7, 14, 22, 0)
    assert p.utc_end == datetime(2026, 7, 15, 22, 0)


@pytest.mark.parametrize(
    ("day", "hours", "utc_start", "utc_end"),
    [
        # spring forward: 2026-03-29 has 23 hours in Berlin (CET+1 -> CEST+2 at 02:00)
        (date(2026, 3, 29), 23, datetime(2026, 3, 28, 23), datetime(2026, 3, 29, 22)),
        # fall back: 2026-10-25 has 25 hours (CEST+2 -> CET+1 at 03:00)
        (date(2026, 10, 25), 25, datetime(2026, 10, 24, 22), datetime(2026, 10, 25, 23)),
    ],
)
def test_dst_days_have_their_real_length(day, hours, utc_start, utc_end):
    p = ReportPeriod("daily", day, "Europe/Berlin")
    assert p.hours == hours
    assert (p.utc_start, p.utc_end) == (utc_start, utc_end)


def test_month_containing_dst_change_spans_local_midnights():
    p = ReportPeriod.parse("monthly", "2026-10", "Europe/Berlin")
    # 1 Oct 00:00 CEST = 30 Sep 22:00 UTC; 1 Nov 00:00 CET = 31 Oct 23:00 UTC
    assert (p.utc_start, p.utc_end) == (datetime(2026, 9, 30, 22), datetime(2026, 10, 31, 23))
    assert p.hours == 31 * 24 + 1


def test_from_data_interval_accepts_exactly_one_period():
    start = datetime(2026, 9, 30, 22, tzinfo=UTC)  # midnight Berlin
    end = datetime(2026, 10, 31, 23, tzinfo=UTC)
    p = ReportPeriod.from_data_interval("monthly", start, end, "Europe/Berlin")
    assert p == ReportPeriod("monthly", date(2026, 10, 1), "Europe/Berlin")


@pytest.mark.parametrize(
    ("grain", "start", "end"),
    [
        # a cron trigger timetable's zero-width interval
        ("daily", datetime(2026, 10, 5, tzinfo=UTC), datetime(2026, 10, 5, tzinfo=UTC)),
        # not at local midnight
        ("daily", datetime(2026, 10, 5, 2, tzinfo=UTC), datetime(2026, 10, 6, 2, tzinfo=UTC)),
        # two days
        ("daily", datetime(2026, 10, 5, tzinfo=UTC), datetime(2026, 10, 7, tzinfo=UTC)),
        # a month that does not start on the 1st
        ("monthly", datetime(2026, 10, 5, tzinfo=UTC), datetime(2026, 11, 5, tzinfo=UTC)),
    ],
)
def test_from_data_interval_rejects_other_intervals(grain, start, end):
    with pytest.raises(PeriodError):
        ReportPeriod.from_data_interval(grain, start, end, "UTC")


def test_neighbours_and_year_ago():
    p = ReportPeriod.parse("monthly", "2026-01")
    assert p.previous().key == "2025-12"
    assert p.year_ago().key == "2025-01"
    d = ReportPeriod.parse("daily", "2028-02-29")
    assert d.year_ago().start_date == date(2027, 2, 28)
    assert d.previous().start_date == date(2028, 2, 28)
    assert ReportPeriod.parse("daily", "2026-03-01").previous().start_date == date(2026, 2, 28)


def test_invalid_periods_fail_clearly():
    with pytest.raises(PeriodError, match="starts on the 1st"):
        ReportPeriod("monthly", date(2026, 10, 2))
    with pytest.raises(PeriodError, match="grain"):
        ReportPeriod("weekly", date(2026, 10, 5))
    with pytest.raises(Exception, match="Nowhere"):
        ReportPeriod("daily", date(2026, 10, 5), "Nowhere/City")


def test_backfill_takes_periods_and_names_their_local_starts():
    from crm_kpis.tools.backfill import backfill_command, count_periods, parse_range

    first, last = parse_range("monthly", "2025-11..2026-10", "Europe/Berlin")
    assert count_periods(first, last) == 12
    command = backfill_command("monthly", first, last, dry_run=True, reprocess="completed")
    # 1 Nov 2025 00:00 CET is 31 Oct 23:00 UTC; 1 Oct 2026 00:00 CEST is 30 Sep 22:00 UTC
    assert command[command.index("--from-date") + 1] == "2025-11-01T00:00:00+01:00"
    assert command[command.index("--to-date") + 1] == "2026-10-01T00:00:00+02:00"
    assert command[-3:] == ["--reprocess-behavior", "completed", "--dry-run"]
    days = parse_range("daily", "2026-10-01..2026-10-31", "America/New_York")
    assert count_periods(*days) == 31
    one = parse_range("daily", "2026-10-05", "UTC")
    assert one[0] == one[1] and count_periods(*one) == 1


def test_backfill_refuses_a_range_that_is_not_periods():
    import pytest

    from crm_kpis.tools.backfill import parse_range

    with pytest.raises(SystemExit, match="not a range of monthly periods"):
        parse_range("monthly", "October", "UTC")
    with pytest.raises(SystemExit, match="before the first"):
        parse_range("daily", "2026-10-05..2026-10-01", "UTC")


def test_a_period_reads_as_its_days():
    from crm_kpis.periods import ReportPeriod

    assert ReportPeriod.parse("monthly", "2026-10").span == "1–31 October 2026"
    assert ReportPeriod.parse("monthly", "2028-02").span == "1–29 February 2028"  # a leap year
    assert ReportPeriod.parse("daily", "2026-10-05").span == "5 October 2026"
