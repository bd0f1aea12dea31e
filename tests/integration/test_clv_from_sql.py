"""The whole path, SQL to parameters, against the paper: the CDNOW sample loaded as orders into a
CRM database, read by crm/purchase_histories.sql (a purchase is the orders of one instant, as the
paper's "transactions" are a customer's purchases of one day), and fitted by the forecast that the
monthly KPIs use. The period ends with the paper's calibration (30 September 1997 included), and
the fit must give the published parameters at their published precision.

The file records days, not times: each day's purchases are loaded at noon, as orders placed during
that day. With time counted in whole days (floored), t_x is the paper's day difference, and T from a
first purchase at noon on 1 January to the end of 30 September is 272 days, the paper's 38.86 weeks.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from crm_kpis.clv import forecast as clv
from crm_kpis.clv import rfm
from crm_kpis.compute import prepare_frames
from crm_kpis.kpis import REGISTRY, KpiValue
from crm_kpis.kpis.base import Inputs
from crm_kpis.paths import PROJECT_DIR
from crm_kpis.periods import ReportPeriod
from crm_kpis.sources import loading
from crm_kpis.sources.connections import engine_for
from crm_kpis.sources.loading import load_extracts

CDNOW = PROJECT_DIR.parent / "shared" / "data" / "cdnow" / "CDNOW_sample.txt"
#: the last day of the paper's calibration
LAST_CALIBRATION_DAY = ReportPeriod.parse("daily", "1997-09-30")


@pytest.fixture(scope="module")
def cdnow_crm(tmp_path_factory: pytest.TempPathFactory) -> str:
    transactions = rfm.read_cdnow(str(CDNOW))
    orders = pd.DataFrame({
        "order_id": np.arange(1, len(transactions) + 1), "customer_id": transactions["customer_id"],
        "ordered_at": pd.to_datetime(transactions["day"]) + pd.Timedelta(hours=12), "status": "completed",
        "total_amount": transactions["value"]})
    ids = np.sort(transactions["customer_id"].unique())
    customers = pd.DataFrame({"customer_id": ids, "created_at": pd.Timestamp("1997-01-01"),
                              "segment": np.where(ids % 2 == 0, "even", "odd"), "churned_at": pd.NaT})
    url = f"sqlite:///{tmp_path_factory.mktemp('cdnow') / 'crm.db'}"
    with engine_for(url).begin() as conn:
        orders.to_sql("orders", conn, index=False)
        customers.to_sql("customers", conn, index=False)
    return url


@pytest.fixture()
def histories(cdnow_crm: str, monkeypatch: pytest.MonkeyPatch) -> pd.DataFrame:
    monkeypatch.setattr(loading, "engine_for", lambda conn_id: engine_for(cdnow_crm))
    return load_extracts({"purchase_histories"}, LAST_CALIBRATION_DAY).frames["purchase_histories"]


def test_sql_and_forecast_give_the_published_parameters(histories: pd.DataFrame) -> None:
    assert len(histories) == 2357
    result = clv.forecast(histories, LAST_CALIBRATION_DAY)
    p, s = result.bgnbd.params, result.gamma_gamma.params
    assert (round(p["r"], 3), round(p["alpha"], 3), round(p["a"], 3), round(p["b"], 3)) == (0.243, 4.414, 0.793, 2.426)
    assert round(result.bgnbd.log_likelihood, 1) == -9582.4
    assert (round(s["p"], 2), round(s["q"], 2), round(s["gamma"], 2)) == (6.25, 3.74, 15.44)
    assert result.gamma_gamma.observations == 946
    # the same histories as the paper's own summary, customer by customer
    paper = rfm.summarise(rfm.read_cdnow(str(CDNOW)), date(1997, 9, 30))
    assert (np.sort(result.customers["x"].to_numpy()) == np.sort(paper.x)).all()


LIFETIME_KPIS = [k for k in REGISTRY if REGISTRY[k].compute.__module__ == "crm_kpis.kpis.lifetime_value"]


def _lifetime_kpis(period: ReportPeriod, frames: dict[str, pd.DataFrame]) -> tuple[list[KpiValue], dict]:
    inputs = Inputs(period, prepare_frames(frames))
    return [v for k in LIFETIME_KPIS for v in REGISTRY[k].evaluate(inputs)], inputs.models


def test_the_monthly_kpis_read_one_fit_and_keep_it(histories: pd.DataFrame) -> None:
    """The five KPIs share one fit per period (stored once in the run's models) and are what its
    per-customer predictions add up to; a second computation gives exactly the same values."""
    period = ReportPeriod.parse("monthly", "1997-09")
    frames = {"purchase_histories": histories,
              "customer_lifetimes": pd.DataFrame(columns=["customer_id", "segment", "created_at", "churned_at"])
              .astype({"created_at": "datetime64[ns]", "churned_at": "datetime64[ns]"})}
    values, models = _lifetime_kpis(period, frames)
    assert _lifetime_kpis(period, frames) == (values, models)
    by = {(v.kpi_id, v.dimension, v.member): v for v in values}
    fit = models["purchase_forecast"]
    assert len(LIFETIME_KPIS) == 5
    assert fit["customers"] == 2357 and fit["bgnbd"]["converged"] and fit["gamma_gamma"]["converged"]
    forecast = clv.forecast(histories, period)
    c = forecast.customers
    mean = by[("sales.predicted_clv_mean", "", "")]
    assert (mean.numerator, mean.denominator) == (pytest.approx(c["clv_12m"].sum()), 2357)
    assert mean.value == pytest.approx(c["clv_12m"].sum() / 2357)
    assert by[("sales.predicted_clv_median", "", "")].value == pytest.approx(float(np.median(c["clv_12m"])))
    inactive = by[("sales.probably_inactive_share", "", "")]
    assert inactive.numerator == int((c["p_alive"] < 0.5).sum()) and inactive.denominator == 2357
    # expected purchases are a sum: the segments add up to the whole
    total = by[("sales.expected_purchases_next", "", "")].value
    parts = [by[("sales.expected_purchases_next", "segment", m)].value for m in ("even", "odd")]
    assert sum(parts) == pytest.approx(total)
    # no churn recorded: the retention model has nothing to fit and says so
    retention = by[("sales.projected_retention_12m", "", "")]
    assert retention.value is None and retention.note.startswith("undefined: 0 customers churned")
    assert models["retention_projection"] == {"undefined": retention.note.removeprefix("undefined: ")}

