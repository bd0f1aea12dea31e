"""From transactions to the models' inputs: per customer x, t_x, T (and mean repeat spend).

Conventions of Fader, Hardie & Lee (2005), which the CDNOW golden numbers need: purchases on the
same day are one transaction (their values added); x counts repeat transactions after the first
purchase, up to the calibration end; t_x and T are measured from the first purchase, in weeks
(days / 7); z̄ is the mean value of the repeat transactions (the first one is excluded: it often
differs, e.g. a welcome offer).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Summary:
    customer_id: np.ndarray
    x: np.ndarray
    t_x: np.ndarray
    T: np.ndarray  # noqa: N815  (the papers' name)
    zbar: np.ndarray  # 0 where x = 0
    holdout_x: np.ndarray | None = None  # repeat transactions after the calibration end, when asked


def summarise(transactions: pd.DataFrame, calibration_end: date, holdout_end: date | None = None,
              unit_days: float = 7.0) -> Summary:
    """`transactions`: columns customer_id, day (date), value. Customers whose first purchase is after
    `calibration_end` are not in the calibration (they are new in the holdout) and are left out."""
    frame = transactions.assign(day=pd.to_datetime(transactions["day"]))
    daily = frame.groupby(["customer_id", "day"], as_index=False)["value"].sum()
    end = pd.Timestamp(calibration_end)
    first = daily.groupby("customer_id")["day"].min().rename("first")
    daily = daily.join(first, on="customer_id")
    daily = daily[daily["first"] <= end]
    cal = daily[daily["day"] <= end]
    repeat = cal[cal["day"] > cal["first"]]
    per = cal.groupby("customer_id").agg(first=("first", "first"), last=("day", "max"))
    counts = repeat.groupby("customer_id")["value"].agg(["size", "mean"])
    per = per.join(counts).fillna({"size": 0, "mean": 0.0})
    x = per["size"].to_numpy(dtype=float)
    t_x = ((per["last"] - per["first"]).dt.days / unit_days).to_numpy()
    T = ((end - per["first"]).dt.days / unit_days).to_numpy()  # noqa: N806
    holdout = None
    if holdout_end is not None:
        later = daily[(daily["day"] > end) & (daily["day"] <= pd.Timestamp(holdout_end))]
        holdout = later.groupby("customer_id").size().reindex(per.index, fill_value=0).to_numpy(dtype=float)
    return Summary(per.index.to_numpy(), x, t_x, T, per["mean"].to_numpy(dtype=float), holdout)


def read_cdnow(path: str) -> pd.DataFrame:
    """The CDNOW files of Fader & Hardie: the 1/10 sample (master id, sample id, yyyymmdd, CDs, dollars)
    or the master file (header: customer_id date number_of_cds dollar_value)."""
    with open(path, encoding="utf-8") as handle:
        first = handle.readline().split()
    if first and first[0] == "customer_id":
        raw = pd.read_csv(path, sep=r"\s+")
        ids, days, values = raw["customer_id"], raw["date"], raw["dollar_value"]
    else:
        raw = pd.read_csv(path, sep=r"\s+", header=None, names=["master", "sample", "date", "cds", "dollars"],
                          dtype={"master": str, "sample": int, "date": str})
        ids, days, values = raw["sample"], raw["date"], raw["dollars"]
    return pd.DataFrame({"customer_id": ids, "day": pd.to_datetime(days.astype(str), format="%Y%m%d").dt.date,
                         "value": values.astype(float)})
