"""The lifetime-value forecast's conventions, by hand: calendar horizons (a DST month included),
sBG on lifetimes of many cohorts, its geometric limit, the holdout's sums, and the n/a reasons."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from crm_kpis.clv import bgnbd, sbg
from crm_kpis.clv import forecast as clv
from crm_kpis.kpis import REGISTRY
from crm_kpis.kpis.base import Inputs
from crm_kpis.periods import ReportPeriod

NOVEMBER = ReportPeriod.parse("monthly", "2026-11")


def test_horizons_are_calendar_spans_after_the_period():
    assert clv.horizon_weeks(NOVEMBER, 12) == pytest.approx(365 / 7)  # 1 Dec 2026 .. 1 Dec 2027
    assert clv.horizon_weeks(NOVEMBER, 1) == pytest.approx(31 / 7)  # December
    february = ReportPeriod("monthly", NOVEMBER.start_date.replace(year=2026, month=2), "Europe/Berlin")
    # March 2026 in Berlin loses an hour on the 29th: 31 days less one hour
    assert clv.horizon_weeks(february, 1) == pytest.approx((31 * 24 - 1) / 24 / 7)


REGULAR = [1000, 631, 468, 382, 326, 289, 262, 241]  # Fader & Hardie (2007), "regular" cohort


def test_sbg_on_lifetimes_is_the_cohort_fit():
    """One cohort as lifetimes: n_{t-1} − n_t left in period t, n_7 still there after 7 periods."""
    lost = -np.diff(REGULAR)
    ended = np.repeat(np.arange(1, len(REGULAR)), lost)
    kept = np.full(REGULAR[-1], len(REGULAR) - 1)
    cohort, lifetimes = sbg.fit(REGULAR), sbg.fit_lifetimes(ended, kept)
    assert lifetimes.converged and lifetimes.observations == 1000
    for name in ("alpha", "beta"):
        assert lifetimes.params[name] == pytest.approx(cohort.params[name], rel=1e-5)
    assert (round(lifetimes.params["alpha"], 3), round(lifetimes.params["beta"], 3)) == (0.704, 1.182)


def test_sbg_without_heterogeneity_is_its_geometric_limit():
    """Every subscriber leaves with the same 10 % a month: the sBG's likelihood rises towards α, β → ∞,
    its optimiser cannot converge, and the fit is the limit with θ = cancellations / months observed."""
    active = [round(10_000 * 0.9 ** t) for t in range(13)]
    lost = -np.diff(active)
    ended = np.repeat(np.arange(1, 13), lost)
    kept = np.full(active[-1], 12)
    fit = sbg.fit_lifetimes(ended, kept)
    cancellations = 10_000 - active[-1]
    months_observed = float((np.arange(1, 13) * lost).sum() + 12 * active[-1])
    assert fit.params == {"theta": pytest.approx(cancellations / months_observed)}
    assert fit.converged and "geometric" in fit.message
    assert float(sbg.survival(fit.params, 12)) == pytest.approx((1 - fit.params["theta"]) ** 12)


def _histories(rows: list[tuple]) -> pd.DataFrame:
    """(first_at, last_at, repeats, repeat_amount, calibration_repeats, calibration_last_at, holdout 1..6)"""
    frame = pd.DataFrame(rows, columns=["first_at", "last_at", "repeat_purchases", "repeat_amount",
                                        "calibration_repeats", "calibration_last_at",
                                        *[f"holdout_{i}" for i in range(1, 7)]])
    for c in ("first_at", "last_at", "calibration_last_at"):
        frame[c] = pd.to_datetime(frame[c])
    return frame.assign(segment="smb", customer_id=range(len(frame)))


def test_too_few_repeat_buyers_make_the_kpis_n_a_with_the_reason():
    few = _histories([("2026-01-05", "2026-03-05", 2, 50.0, 2, "2026-03-05", 0, 0, 0, 0, 0, 0)] * 29
                     + [("2026-02-01", "2026-02-01", 0, 0.0, 0, "2026-02-01", 0, 0, 0, 0, 0, 0)] * 100)
    inputs = Inputs(NOVEMBER, {"purchase_histories": few})
    for kpi_id in ("sales.predicted_clv_mean", "sales.probably_inactive_share", "sales.expected_purchases_next"):
        (value,) = REGISTRY[kpi_id].evaluate(inputs)
        assert value.value is None
        assert value.note == "undefined: 29 repeat buyers before the period's end; the models need 30 or more"
    assert inputs.models == {"purchase_forecast": {"undefined": value.note.removeprefix("undefined: ")}}


def test_a_history_without_a_readable_purchase_is_left_out_and_counted():
    frame = _histories([("2026-01-05", "2026-03-05", 2, 50.0, 2, "2026-03-05", 0, 0, 0, 0, 0, 0),
                        (None, None, 0, 0.0, 0, None, 0, 0, 0, 0, 0, 0)])
    kept, excluded = clv.histories(frame)
    assert len(kept) == 1 and excluded == {"history_without_readable_purchase": 1}


def test_the_holdout_counts_only_customers_known_before_it():
    """Customers whose first purchase is in the holdout are not in the check; the actual line is the
    cumulative sum of the holdout months; each predicted point is Σ E[Y(t) | calibration history]."""
    start = clv.holdout_bounds(NOVEMBER)[0]  # 1 June 2026
    assert start == pd.Timestamp("2026-06-01")
    rng = np.random.default_rng(7)
    bounds = clv.holdout_bounds(NOVEMBER)
    rows = []
    for _ in range(200):  # known before June, drawn from the BG/NBD story (r 0.8, α 6 weeks, a 1.5, b 4)
        first = pd.Timestamp("2025-01-01") + pd.Timedelta(days=int(rng.integers(0, 500)))
        rate, drop = rng.gamma(0.8, 1 / 6.0), rng.beta(1.5, 4.0)
        at, times = first, []
        while True:
            at = at + pd.Timedelta(days=min(float(rng.exponential(7.0 / rate)), 1000.0))
            if at >= bounds[-1]:
                break
            times.append(at)
            if rng.uniform() < drop:
                break
        before = [t for t in times if t < start]
        months = [sum(1 for t in times if lo <= t < hi) for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]
        rows.append((first, before[-1] if before else first, len(before), 30.0 * len(before), len(before),
                     before[-1] if before else first, *months))
    frame = _histories(rows)
    params = {"r": 1.0, "alpha": 5.0, "a": 0.8, "b": 2.5}
    check = clv.holdout_check(frame, NOVEMBER, params)
    known = frame.iloc[:200]
    assert check["customers"] == 200 and check["months"] == ["2026-06", "2026-07", "2026-08", "2026-09",
                                                              "2026-10", "2026-11"]
    assert check["actual_cumulative"] == list(np.cumsum([known[f"holdout_{i}"].sum() for i in range(1, 7)]))
    fitted = check["fit"]["params"]
    t_x = np.floor((known["calibration_last_at"] - known["first_at"]).dt.days) / 7
    big_t = np.floor((start - known["first_at"]).dt.days) / 7
    by_hand = bgnbd.conditional_expected_purchases(fitted, (pd.Timestamp("2026-12-01") - start).days / 7,
                                                   known["calibration_repeats"], t_x, big_t).sum()
    assert check["predicted_cumulative"][-1] == pytest.approx(by_hand, abs=1e-3)
    assert math.isclose((pd.Timestamp("2026-12-01") - start).days, 183)
