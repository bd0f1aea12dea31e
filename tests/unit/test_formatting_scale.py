"""One precision and one time unit for figures shown together (a table row, a breakdown column),
by hand: the largest magnitude among them decides."""

from __future__ import annotations

from crm_kpis.report.formatting import format_change, format_value, scale_of


def test_the_largest_magnitude_shown_together_decides():
    assert scale_of(None, -3.0, 2.0) == 3.0
    assert scale_of(None, float("nan")) is None and scale_of() is None


def test_money_in_a_row_has_one_precision():
    # average order value $2,043.78 → $1,832.40: the change is −$211.38, shown in whole dollars
    # like the values beside it; −211.38 / 2,043.78 = −10.34 %
    assert format_change(1832.40, 2043.78, "money") == ("−$211", "−10.3 %")
    assert format_value(1832.40, "money") == "$1,832"
    # a cost per case under $1,000 keeps its cents, value and change alike: 314.06 − 263.59 = +50.47
    assert format_change(314.06, 263.59, "money") == ("+$50.47", "+19.1 %")


def test_money_in_a_column_has_one_precision():
    # the channels' spend: $10,923 is the column's largest, so $898.05 is shown as $898
    assert format_value(898.05, "money", scale=10_923.0) == "$898"
    assert format_value(898.05, "money") == "$898.05"  # alone, it keeps its cents


def test_hours_in_a_row_have_one_unit():
    # lead response time 6.1 h → 5.4 h: −0.7 h, not "−42 min" beside hours
    assert format_change(5.4, 6.1, "hours") == ("−0.7 h", "−11.5 %")
    # first response time 1.4 h → 1.6 h: +0.2 h (12 minutes, but the row is in hours)
    assert format_change(1.6, 1.4, "hours")[0] == "+0.2 h"
    assert format_value(0.5, "hours") == "30 min" and format_value(0.5, "hours", scale=1.5) == "0.5 h"
    # a row that is all under an hour stays in minutes: 0.75 h → 0.5 h is −15 min
    assert format_change(0.5, 0.75, "hours") == ("−15 min", "−33.3 %")
