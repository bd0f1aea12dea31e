"""The lifetime-value forecast of one period: the models fitted on the history up to its end.

From one row per customer (include/sql/crm/purchase_histories.sql) to per-customer predictions
and the fit's diagnostics, which the monthly KPIs summarise (kpis/lifetime_value.py) and the run
stores (kpi_runs.models) for the report's appendix.

Conventions, so that a re-run gives the same values: time is in weeks (as in the papers), counted
in whole days from the customer's first purchase (t_x, T) to his last purchase and to the period's
end; the horizons are calendar spans after the period's end (the next month, the next twelve months).
Nothing reads the clock. CLV is undiscounted revenue: expected purchases in the next twelve months
(BG/NBD) times the expected value of a purchase (Gamma-Gamma).

The holdout check refits BG/NBD on the history up to the start of the six months that end with the
period and forecasts those months' repeat purchases of the customers known then, month by month,
against what they bought (Fader, Hardie & Lee 2005, figure 4, there week by week).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd

from crm_kpis.clv import bgnbd, gamma_gamma, sbg
from crm_kpis.clv.fitting import Fit
from crm_kpis.periods import HOLDOUT_MONTHS, ReportPeriod, _add_months

DAY = np.timedelta64(1, "D")
WEEK_DAYS = 7.0
#: fewer repeat buyers than this, and the models are not fitted (their KPIs are n/a with the count)
MIN_REPEAT_BUYERS = 30
#: the sBG's period: a month of average length, in days
MONTH_DAYS = 365.25 / 12
#: horizon of the CLV and of the projected retention, in months
HORIZON_MONTHS = 12


class ModelUndefined(Exception):
    """The data cannot support the model for this period; the message says why (shown as n/a)."""


@dataclass
class Forecast:
    """Per customer (rows of `customers`): his predictions; and what was fitted, for the run."""

    customers: pd.DataFrame  # segment, x, p_alive, expected_next, expected_12m, value_per_purchase, clv_12m
    bgnbd: Fit
    gamma_gamma: Fit
    horizon_weeks: float
    next_weeks: float
    holdout: dict[str, Any] | None = None
    excluded: dict[str, int] = field(default_factory=dict)

    def diagnostics(self) -> dict[str, Any]:
        return {"bgnbd": self.bgnbd.as_dict(), "gamma_gamma": self.gamma_gamma.as_dict(),
                "customers": int(len(self.customers)),
                "repeat_buyers": int((self.customers["x"] > 0).sum()),
                "horizon_weeks": round(self.horizon_weeks, 4), "next_weeks": round(self.next_weeks, 4),
                "holdout": self.holdout, "excluded": self.excluded}


def _weeks(later: pd.Series, earlier: pd.Series) -> np.ndarray:
    """Whole days between two naive-UTC timestamps, in weeks (days / 7)."""
    days = np.floor((later - earlier).to_numpy() / DAY)
    return days / WEEK_DAYS


def horizon_weeks(period: ReportPeriod, months: int) -> float:
    """The calendar months after the period's end, in weeks (12 months from 1 December: 365 days)."""
    until = period.utc_of(_add_months(period.end_date, months))
    return (until - period.utc_end) / timedelta(days=1) / WEEK_DAYS


def _check(fit: Fit, model: str) -> None:
    if not fit.converged:
        raise ModelUndefined(f"the {model} fit did not converge ({fit.message})")


def histories(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """The customers the models can read: a first purchase with a value (a history made only of
    orders without a readable amount is left out; those orders are counted in the extract)."""
    readable = frame["first_at"].notna()
    if readable.all():  # the frame itself: a filtered copy of every history is 200 MB at company scale
        return frame, {}
    return frame[readable], {"history_without_readable_purchase": int((~readable).sum())}


def forecast(frame: pd.DataFrame, period: ReportPeriod) -> Forecast:
    """Fit BG/NBD and Gamma-Gamma on every purchase history up to the period's end; predict."""
    # not sorted: in whatever order the rows come, the fits read the histories sorted (bgnbd.Histories,
    # gamma_gamma.fit), every prediction is the customer's own, and the KPIs sum them exactly
    # (kpis.base.exact_sum); a sorted copy of the 1.4 M histories held 200 MB at company scale
    data, excluded = histories(frame)
    x = data["repeat_purchases"].to_numpy(dtype=float)
    repeat_buyers = int((x > 0).sum())
    if repeat_buyers < MIN_REPEAT_BUYERS:
        raise ModelUndefined(f"{repeat_buyers} repeat buyers before the period's end; the models need "
                             f"{MIN_REPEAT_BUYERS} or more")
    end = pd.Timestamp(period.utc_end)
    t_x = _weeks(data["last_at"], data["first_at"])
    T = _weeks(pd.Series(end, index=data.index), data["first_at"])  # noqa: N806
    history = bgnbd.Histories.of(x, t_x, T)
    del t_x, T  # the predictions read the distinct histories
    counts = bgnbd.fit_histories(history)
    _check(counts, "BG/NBD")
    # before the predictions are made: its own arrays are freed by then (the peak is not both)
    holdout = holdout_check(data, period, counts.params)
    # to the millionth of the currency unit: a sum of the same amounts added in another order (the
    # database's, or a synced layout's price less refunds) differs in its last bits, and the fit,
    # stopping at its tolerance, would carry that to the 8th digit of the forecast; rounded, the same
    # purchases always fit to the same numbers
    amount = np.round(data["repeat_amount"].to_numpy(dtype=float), 6)
    zbar = np.divide(amount, x, out=np.zeros_like(x), where=x > 0)
    spend = gamma_gamma.fit(x, zbar)
    _check(spend, "Gamma-Gamma")
    if spend.params["q"] <= 1:
        raise ModelUndefined(f"Gamma-Gamma q = {spend.params['q']:.3f} ≤ 1: the mean spend is unbounded")
    h12, h1 = horizon_weeks(period, HORIZON_MONTHS), horizon_weeks(period, 1)
    value = gamma_gamma.expected_average_value(spend.params, x, zbar)
    h = history
    expected_12m = h.per_customer(bgnbd.conditional_expected_purchases(counts.params, h12, h.x, h.t_x, h.T))
    customers = pd.DataFrame({
        "segment": data["segment"].to_numpy(),
        "x": x,
        "p_alive": h.per_customer(bgnbd.probability_alive(counts.params, h.x, h.t_x, h.T)),
        "expected_next": h.per_customer(bgnbd.conditional_expected_purchases(counts.params, h1, h.x, h.t_x, h.T)),
        "expected_12m": expected_12m,
        "value_per_purchase": value,
        "clv_12m": expected_12m * value,
    })
    bad = ~(np.isfinite(customers["p_alive"].to_numpy()) & np.isfinite(customers["expected_next"].to_numpy())
            & np.isfinite(customers["clv_12m"].to_numpy()))
    if bad.any():
        raise ModelUndefined(f"the fitted models give no finite forecast for {int(bad.sum()):,} customers")
    customers["probably_inactive"] = customers["p_alive"] < 0.5
    return Forecast(customers, counts, spend, h12, h1, holdout, excluded)


def holdout_bounds(period: ReportPeriod) -> list[pd.Timestamp]:
    """Naive-UTC starts of the six holdout months and the period's end (as the SQL binds them)."""
    starts = [period.trailing_months_start(HOLDOUT_MONTHS + 1 - i) for i in range(1, HOLDOUT_MONTHS + 1)]
    return [pd.Timestamp(t) for t in [*starts, period.utc_end]]


def holdout_check(data: pd.DataFrame, period: ReportPeriod, start: dict[str, float]) -> dict[str, Any]:
    """BG/NBD fitted on the history before the holdout, its forecast of each holdout month's repeat
    purchases (cumulative) against the real ones, for the customers who had bought by then."""
    bounds = holdout_bounds(period)
    # the customers who had bought by then, as a mask: a copy of their columns cost 100 MB at company scale
    bought = (data["first_at"] < bounds[0]).to_numpy()
    x = data["calibration_repeats"].to_numpy(dtype=float)[bought]
    out: dict[str, Any] = {"calibration_end": bounds[0].isoformat(), "customers": int(bought.sum()),
                           "months": [(b.tz_localize("UTC").tz_convert(period.tz)).strftime("%Y-%m")
                                      for b in bounds[:-1]]}
    if int((x > 0).sum()) < MIN_REPEAT_BUYERS:
        out["undefined"] = f"{int((x > 0).sum())} repeat buyers before {out['months'][0]}: too few to fit"
        return out
    first = data["first_at"][bought]
    t_x = _weeks(data["calibration_last_at"][bought], first)
    T = _weeks(pd.Series(bounds[0], index=first.index), first)  # noqa: N806
    h = bgnbd.Histories.of(x, t_x, T)
    del first, t_x, T
    fit = bgnbd.fit_histories(h, start=tuple(start[k] for k in bgnbd.PARAMS))
    out["fit"] = fit.as_dict()
    if not fit.converged:
        out["undefined"] = f"the calibration fit did not converge ({fit.message})"
        return out
    actual = [float(data[f"holdout_{i}"].to_numpy()[bought].sum()) for i in range(1, HOLDOUT_MONTHS + 1)]
    # computed per history, summed over the customers exactly (math.fsum): the same in any row order
    predicted = [math.fsum(h.per_customer(bgnbd.conditional_expected_purchases(
        fit.params, float((b - bounds[0]) / timedelta(days=1)) / WEEK_DAYS, h.x, h.t_x, h.T)))
        for b in bounds[1:]]
    out["actual_cumulative"] = [float(v) for v in np.cumsum(actual)]
    out["predicted_cumulative"] = [round(v, 3) for v in predicted]
    return out


def retention_projection(customers: pd.DataFrame, period: ReportPeriod) -> tuple[pd.DataFrame, Fit]:
    """sBG on every customer's tenure in whole months (a month: 365.25 / 12 days) up to the period's
    end; per customer active at the end, the projected chance to be a customer 12 months later,
    S(k + 12) / S(k) for k months completed."""
    end = pd.Timestamp(period.utc_end)
    known = customers[customers["created_at"] < end]  # any order: sBG reads the tenures' counts
    churned = known["churned_at"].notna() & (known["churned_at"] < end)
    gone = known[churned]
    lifetime = np.maximum(np.ceil((gone["churned_at"] - gone["created_at"]).to_numpy() / DAY / MONTH_DAYS), 1)
    active = known[~churned]
    completed = np.floor((end - active["created_at"]).to_numpy() / DAY / MONTH_DAYS)
    if len(gone) < MIN_REPEAT_BUYERS:
        raise ModelUndefined(f"{len(gone)} customers churned before the period's end; a retention projection needs "
                             f"{MIN_REPEAT_BUYERS} or more")
    fit = sbg.fit_lifetimes(lifetime, completed)
    _check(fit, "sBG")
    kept = sbg.survival(fit.params, completed + HORIZON_MONTHS) / sbg.survival(fit.params, completed)
    return pd.DataFrame({"segment": active["segment"].to_numpy(), "retained_12m": kept}), fit
