"""The lifetime-value models read one row per customer built in SQL (crm/purchase_histories.sql).
A hand-made set, worked out by hand below, pins what that row holds: the same-instant rule, the
period's end, orders that are not completed, amounts missing or negative, an order row synced
twice, a customer unknown to the customers table, the holdout months. The server tests run the
same set on PostgreSQL and MariaDB. The tables are created as a sync tool writes them (no keys,
nullable amounts), since that is where those faults come from.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from crm_kpis.periods import ReportPeriod
from crm_kpis.sources import loading
from crm_kpis.sources.connections import engine_for
from crm_kpis.sources.loading import load_extracts
from crm_kpis.sources.reading import read_query

# holdout months May … October 2026 (UTC): holdout_1 = 2026-05-01, …, holdout_6 = 2026-10-01; end 2026-11-01
OCTOBER = ReportPeriod.parse("monthly", "2026-10")

CUSTOMERS = pd.DataFrame({
    "customer_id": [1, 2, 3, 4, 5, 6],
    "created_at": pd.to_datetime(["2026-01-01"] * 6),
    "segment": ["smb", "smb", "mid_market", "smb", "enterprise", "smb"],
    "churned_at": pd.to_datetime([None] * 6),
})

ORDERS = pd.DataFrame([
    # customer 1: first purchase 10 Jan; two orders at one instant on 5 Mar (one purchase of 80);
    # June and 31 Oct 23:59:59 in the holdout; 1 Nov 00:00 is after the end; the refund is no purchase
    (10, 1, "2026-01-10 10:00:00", "completed", 100.0), (11, 1, "2026-03-05 09:00:00", "completed", 50.0),
    (12, 1, "2026-03-05 09:00:00", "completed", 30.0), (13, 1, "2026-06-15 12:00:00", "completed", 40.0),
    (14, 1, "2026-10-31 23:59:59", "completed", 10.0), (15, 1, "2026-11-01 00:00:00", "completed", 999.0),
    (16, 1, "2026-02-01 10:00:00", "refunded", 500.0),
    # customer 2: one purchase, exactly at the holdout's start
    (20, 2, "2026-05-01 00:00:00", "completed", 20.0),
    # customer 3: an amount missing (Feb) and one negative (Jul) are left out and counted
    (30, 3, "2026-02-01 10:00:00", "completed", None), (31, 3, "2026-04-01 10:00:00", "completed", 60.0),
    (32, 3, "2026-07-01 10:00:00", "completed", -5.0),
    # customer 4: nothing readable at all
    (40, 4, "2026-03-01 10:00:00", "completed", -10.0),
    # customer 5: the August order synced twice (one purchase of 70, not 140)
    (50, 5, "2026-02-02 08:00:00", "completed", 10.0), (51, 5, "2026-08-10 08:00:00", "completed", 70.0),
    (51, 5, "2026-08-10 08:00:00", "completed", 70.0),
    # customer 6: only a cancelled order, so no history
    (60, 6, "2026-09-01 10:00:00", "cancelled", 15.0),
    # customer 9 is not in the customers table
    (90, 9, "2026-09-01 10:00:00", "completed", 25.0),
], columns=["order_id", "customer_id", "ordered_at", "status", "total_amount"]).assign(
    ordered_at=lambda f: pd.to_datetime(f["ordered_at"]))

T = pd.Timestamp
#: customer → (first_at, last_at, repeat_purchases, repeat_amount, calibration_repeats,
#:             calibration_last_at, holdout_1..6, orders_excluded), by hand from the rows above
EXPECTED = {
    # repeats 5 Mar (80), 15 Jun (40), 31 Oct (10); before May only 5 Mar; June is holdout 2, Oct holdout 6
    1: (T("2026-01-10 10:00"), T("2026-10-31 23:59:59"), 3, 130.0, 1, T("2026-03-05 09:00"), (0, 1, 0, 0, 0, 1), 0),
    # a first purchase is no repeat; it lies in holdout month 1 (its customer is not in the check)
    2: (T("2026-05-01"), T("2026-05-01"), 0, 0.0, 0, None, (1, 0, 0, 0, 0, 0), 0),
    3: (T("2026-04-01 10:00"), T("2026-04-01 10:00"), 0, 0.0, 0, T("2026-04-01 10:00"), (0,) * 6, 2),
    4: (None, None, 0, 0.0, 0, None, (0,) * 6, 1),
    5: (T("2026-02-02 08:00"), T("2026-08-10 08:00"), 1, 70.0, 0, T("2026-02-02 08:00"), (0, 0, 0, 1, 0, 0), 0),
    9: (T("2026-09-01 10:00"), T("2026-09-01 10:00"), 0, 0.0, 0, None, (0, 0, 0, 0, 1, 0), 0),
}


def _ts(value: object) -> pd.Timestamp | None:
    return None if pd.isna(value) else pd.Timestamp(value)


def load_hand_made(url: str) -> None:
    engine = engine_for(url)
    with engine.begin() as conn:
        CUSTOMERS.to_sql("customers", conn, if_exists="replace", index=False)
        ORDERS.to_sql("orders", conn, if_exists="replace", index=False)


def check_hand_made(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    load_hand_made(url)
    raw = read_query(engine_for(url), "crm/purchase_histories.sql", OCTOBER.sql_params())
    got = {int(r.customer_id): (_ts(r.first_at), _ts(r.last_at), int(r.repeat_purchases), float(r.repeat_amount),
                                int(r.calibration_repeats), _ts(r.calibration_last_at),
                                tuple(int(getattr(r, f"holdout_{i}")) for i in range(1, 7)), int(r.orders_excluded))
           for r in raw.itertuples()}
    assert got == EXPECTED

    monkeypatch.setattr(loading, "engine_for", lambda conn_id: engine_for(url))
    loaded = load_extracts({"purchase_histories"}, OCTOBER)
    # customer 9's history is left out (one customer); orders 30, 32 and 40 are counted as orders
    assert loaded.rejected == {"purchase_histories": {"purchase_history_of_unknown_customer": 1,
                                                      "negative_or_missing_total_amount": 3}}
    assert loaded.excluded["orders"]["negative_or_missing_total_amount"] == {"rows": 3}
    assert sorted(loaded.frames["purchase_histories"]["customer_id"].astype(int)) == [1, 2, 3, 4, 5]


def test_hand_made_histories_on_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    check_hand_made(f"sqlite:///{tmp_path / 'crm.db'}", monkeypatch)


def test_the_histories_end_with_the_period(tmp_path: Path) -> None:
    """September's histories do not know October: a re-run of September later reads the same rows."""
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    load_hand_made(url)
    september = read_query(engine_for(url), "crm/purchase_histories.sql",
                           ReportPeriod.parse("monthly", "2026-09").sql_params()).set_index("customer_id")
    assert _ts(september.at[1, "last_at"]) == T("2026-06-15 12:00")
    assert int(september.at[1, "repeat_purchases"]) == 2
    # the holdout moves with the period: April … September, June is now its third month
    assert [int(september.at[1, f"holdout_{i}"]) for i in range(1, 7)] == [0, 0, 1, 0, 0, 0]
