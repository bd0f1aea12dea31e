"""The report's appendix on the lifetime-value models: what was fitted for the period, how well it
converged, and how well it forecast the six months it had not seen (the holdout check).

Read from the run's stored diagnostics (kpi_runs.models), never refitted at render time, so the
appendix describes exactly the fit behind the KPIs printed above it.
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup

from crm_kpis.report.charts import PREDICTED, Series, line_chart

#: the published parameters' names, as the papers write them
NAMES = {"r": "r", "alpha": "α", "a": "a", "b": "b", "p": "p", "q": "q", "gamma": "γ", "beta": "β", "theta": "θ"}


def _params(fit: dict[str, Any]) -> str:
    return ", ".join(f"{NAMES.get(k, k)} = {v:,.4g}" if abs(v) >= 1e4 else f"{NAMES.get(k, k)} = {v:.4f}"
                     for k, v in fit["params"].items())


def _fit_row(model: str, fit: dict[str, Any], used: str) -> dict[str, str]:
    return {"model": model, "params": _params(fit), "log_likelihood": f"{fit['log_likelihood']:,.2f}",
            "converged": "yes" if fit["converged"] else f"no ({fit['message']})", "used": used}


def _holdout(check: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"customers": check["customers"], "months": check["months"],
                           "undefined": check.get("undefined")}
    if out["undefined"]:
        return out
    actual, predicted = check["actual_cumulative"], check["predicted_cumulative"]
    out["fit"] = _params(check["fit"])
    out["rows"] = [{"month": m, "actual": f"{a:,.0f}", "predicted": f"{p:,.0f}",
                    "error": f"{(p - a) / a:+.1%}" if a else "n/a"}
                   for m, a, p in zip(check["months"], actual, predicted, strict=True)]
    out["chart"] = line_chart(check["months"], [Series("actual", actual), Series("predicted", predicted, dashed=True,
                                                                                   colour=PREDICTED)],
                              "count", title="Cumulative repeat purchases in the holdout: actual and predicted",
                              width=520, height=220, from_zero=True)
    out["final_error"] = out["rows"][-1]["error"]
    return out


def models_appendix(models: dict[str, Any] | None) -> dict[str, Any] | None:
    """The appendix's content, or None when the run fitted no model (a daily run, an older run)."""
    if not models:
        return None
    fits: list[dict[str, str]] = []
    undefined: list[str] = []
    holdout = None
    forecast = models.get("purchase_forecast")
    if forecast and "undefined" in forecast:
        undefined.append(f"Purchase and spend models: {forecast['undefined']}")
    elif forecast:
        fits.append(_fit_row("BG/NBD (purchases)", forecast["bgnbd"],
                             f"{forecast['customers']:,} customers, {forecast['repeat_buyers']:,} of them repeat buyers"))
        fits.append(_fit_row("Gamma-Gamma (spend per purchase)", forecast["gamma_gamma"],
                             f"{forecast['gamma_gamma']['observations']:,} repeat buyers"))
        if forecast.get("holdout"):
            holdout = _holdout(forecast["holdout"])
    retention = models.get("retention_projection")
    if retention and "undefined" in retention:
        undefined.append(f"Retention model: {retention['undefined']}")
    elif retention:
        fits.append(_fit_row("shifted-beta-geometric (retention)", retention["sbg"],
                             f"{retention['sbg']['observations']:,} customers, {retention['active_customers']:,} "
                             "active at the period's end"))
    if not fits and not undefined:
        return None
    return {"fits": fits, "undefined": undefined, "holdout": holdout,
            "geometric": any("θ" in f["params"] for f in fits), "chart": holdout.get("chart") if holdout else Markup("")}
