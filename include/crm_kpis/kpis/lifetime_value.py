"""Predictive lifetime value (issue 19): what the fitted BG/NBD, Gamma-Gamma and sBG models say
about the customer base at the period's end (crm_kpis/clv). Monthly, breakdown by segment.

All five read one forecast per period, fitted once on the history up to the period's end
(`Inputs.derived`); its parameters and diagnostics are kept with the run (`Inputs.models`) and
printed in the report's appendix. When the data cannot support a model (too few repeat buyers or
churned customers, a fit that does not converge), the KPIs are n/a with that reason.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from crm_kpis.clv import forecast as clv
from crm_kpis.kpis.base import Inputs, Measure, Undefined, kpi, mean, median, share, total

SEGMENT = ("segment",)
FORECAST = "purchase_forecast"
RETENTION = "retention_projection"


def _fitted(x: Inputs, key: str, fit: Callable[[Inputs], tuple[Any, dict[str, Any]]]) -> Any:
    """The period's fit under `key`, made once for all the KPIs that read it; its diagnostics (or
    why the data cannot support it) kept in `Inputs.models` for the run; Undefined when it cannot."""

    def build(x: Inputs) -> Any:
        try:
            result, diagnostics = fit(x)
        except clv.ModelUndefined as exc:
            x.models[key] = {"undefined": str(exc)}
            return exc
        x.models[key] = diagnostics
        return result

    result = x.derived(key, build)
    if isinstance(result, clv.ModelUndefined):
        raise Undefined(str(result))
    return result


def _forecast(x: Inputs) -> clv.Forecast:
    def fit(x: Inputs) -> tuple[clv.Forecast, dict[str, Any]]:
        result = clv.forecast(x["purchase_histories"], x.period)
        return result, result.diagnostics()

    return _fitted(x, FORECAST, fit)


def _retention(x: Inputs) -> Any:
    def fit(x: Inputs) -> tuple[Any, dict[str, Any]]:
        frame, sbg = clv.retention_projection(x["customer_lifetimes"], x.period)
        return frame, {"sbg": sbg.as_dict(), "active_customers": int(len(frame)),
                       "horizon_months": clv.HORIZON_MONTHS, "month_days": round(clv.MONTH_DAYS, 4)}

    return _fitted(x, RETENTION, fit)


_MODEL = ("purchase_histories",)
_NOTE = ("BG/NBD and Gamma-Gamma fitted by maximum likelihood on every customer's purchases up to the "
         "period's end (time in weeks from the first purchase; a purchase is the orders of one instant).")


@kpi("sales.predicted_clv_mean", tracked=("orders",), name="Predicted 12-month CLV (mean)", unit="money",
     better="up", grain="M", inputs=_MODEL, breakdowns=SEGMENT,
     formula="mean over customers with a purchase before end of E[purchases in the next 12 months | history] "
             "(BG/NBD) × E[value per purchase | history] (Gamma-Gamma)",
     description="What a customer is expected to spend in the twelve months after the period, undiscounted. "
                 + _NOTE)
def predicted_clv_mean(x: Inputs) -> list[Measure]:
    return mean(_forecast(x).customers, "clv_12m", SEGMENT)


@kpi("sales.predicted_clv_median", tracked=("orders",), name="Predicted 12-month CLV (median)", unit="money",
     better="up", grain="M", inputs=_MODEL, breakdowns=SEGMENT,
     formula="median over customers with a purchase before end of the predicted 12-month CLV",
     description="The typical customer's predicted value (a few large buyers move the mean, not this). " + _NOTE)
def predicted_clv_median(x: Inputs) -> list[Measure]:
    return median(_forecast(x).customers, "clv_12m", SEGMENT)


@kpi("sales.expected_purchases_next", tracked=("orders",), name="Expected purchases next month", unit="count",
     better="up", grain="M", inputs=_MODEL, breakdowns=SEGMENT,
     formula="Σ over customers with a purchase before end of E[purchases in the month after the period | history] "
             "(BG/NBD)",
     description="Purchases the existing customers are expected to make in the next month (new customers "
                 "not included). " + _NOTE)
def expected_purchases_next(x: Inputs) -> list[Measure]:
    return total(_forecast(x).customers, "expected_next", SEGMENT)


@kpi("sales.probably_inactive_share", tracked=("orders",), name="Customers probably inactive", unit="rate",
     better="down", grain="M", inputs=_MODEL, breakdowns=SEGMENT,
     formula="customers with P(alive | history) < 0.5 (BG/NBD) / customers with a purchase before end",
     description="Share of buyers the model judges more likely gone than not, from how long they have been "
                 "silent against how often they used to buy. " + _NOTE)
def probably_inactive_share(x: Inputs) -> list[Measure]:
    return share(_forecast(x).customers, "probably_inactive", SEGMENT)


@kpi("sales.projected_retention_12m", tracked=("customers", "churn_dates"), name="Projected 12-month retention",
     unit="rate", better="up", grain="M", inputs=("customer_lifetimes",), breakdowns=SEGMENT,
     formula="mean over customers active at end of S(k + 12) / S(k), S the shifted-beta-geometric survival "
             "fitted on every customer's tenure in months, k his completed months",
     description="Share of today's customers expected to still be customers in twelve months (sBG, Fader & "
                 "Hardie 2007): it allows for the cancel-prone leaving first, unlike a constant churn rate.")
def projected_retention_12m(x: Inputs) -> list[Measure]:
    return mean(_retention(x), "retained_12m", SEGMENT)
