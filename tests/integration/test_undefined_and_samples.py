"""A ratio over nothing is n/a with its reason, and "small sample" is said only where a KPI's
denominator counts what it was computed on (answers, tickets, deals), by hand."""

from __future__ import annotations

import pandas as pd

from crm_kpis.kpis import REGISTRY
from crm_kpis.kpis.base import Inputs
from crm_kpis.periods import ReportPeriod

OCT = ReportPeriod.parse("monthly", "2026-10")


def test_a_rate_with_nothing_to_divide_by_is_n_a_with_its_reason():
    # no subscription reached its term in October: 0 of 0 renewed is undefined, not 0 %
    terms = pd.DataFrame({"renewed": pd.Series([], dtype="Int64"), "segment": pd.Series([], dtype="string")})
    [company] = REGISTRY["sales.renewal_rate"].evaluate(Inputs(OCT, {"subscriptions_term_end": terms}))
    assert (company.value, company.numerator, company.denominator) == (None, 0.0, 0.0)
    assert company.note == "undefined: nothing in the period to compute it on (its denominator is 0)"


def test_a_segment_without_terms_is_n_a_and_one_with_terms_is_its_share():
    # smb: 2 terms, 1 renewed → 1 / 2 = 50 %; the company: 1 / 2 as well
    terms = pd.DataFrame({"renewed": pd.array([1, 0], dtype="Int64"), "segment": pd.array(["smb", "smb"], dtype="string")})
    values = REGISTRY["sales.renewal_rate"].evaluate(Inputs(OCT, {"subscriptions_term_end": terms}))
    by = {(v.dimension, v.member): v for v in values}
    assert by[("", "")].value == 1 / 2 and by[("", "")].note is None
    assert by[("segment", "smb")].value == 1 / 2 and by[("segment", "smb")].note is None


def test_only_a_count_of_observations_is_a_sample():
    # the loyalty index is the mean of 3 scores (denominator 3), CLV divides by a churn rate, ROI by
    # spend, growth by last period's revenue, calls per day by the days: none is a sample size
    assert {k for k, d in REGISTRY.items() if not d.sample} == {
        "sales.loyalty_index", "sales.clv", "marketing.roi", "sales.growth_rate", "operations.calls_per_day"}
    assert REGISTRY["operations.csat"].sample and REGISTRY["marketing.nps"].sample


def test_the_report_says_small_sample_only_for_a_value_on_few_observations(warehouse):
    from datetime import date, datetime

    from crm_kpis.config.settings import ReportConfig, Settings
    from crm_kpis.history.store import kpi_history
    from crm_kpis.report.context import _History, _line

    rows = [("sales.loyalty_index", 71.0, 213.0, 3.0, None), ("operations.csat", 0.75, 3.0, 4.0, None),
            ("sales.renewal_rate", None, 0.0, 0.0, "undefined: nothing in the period to compute it on (its denominator is 0)")]
    with warehouse.begin() as conn:
        conn.execute(kpi_history.insert(), [
            {"kpi_id": k, "grain": "monthly", "period_start": date(2026, 10, 1), "period_end": date(2026, 11, 1),
             "timezone": "UTC", "dimension": "", "member": "", "value": v, "numerator": n, "denominator": d,
             "note": note, "run_id": "r", "computed_at": datetime(2026, 11, 1)} for k, v, n, d, note in rows])
    settings = Settings("UTC", "USD", "X", {"m": ReportConfig("m", "M", "monthly", ("a@example.com",))})
    history = _History(warehouse, OCT)
    loyalty, csat, renewal = (_line(k, history, settings) for k in ("sales.loyalty_index", "operations.csat",
                                                                    "sales.renewal_rate"))
    assert loyalty.sample is None and loyalty.sample_text == ""  # 3 scores, not 3 answers
    assert (csat.sample, csat.sample_text) == (4.0, "3 of 4")  # 3 of 4 answers satisfied
    assert renewal.sample is None and renewal.note.startswith("undefined: nothing in the period to compute it on")
