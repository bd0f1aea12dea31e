"""The cross-sell and up-sell flags are computed per buyer in SQL (crm/buyer_flags.sql), because
they need each buyer's whole purchase history. Two checks keep that SQL honest:

- a hand-made data set whose flags are worked out by hand below, edge cases included (an order
  on each period bound, a cancelled earlier order, two orders at one instant, an unknown product,
  a customer missing from the customers table); the server tests run the same set on PostgreSQL
  and MariaDB;
- the definition written in pandas over every order line the buyers ever had (the oracle),
  compared buyer by buyer with the SQL on the demo data, for three months.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import text

from crm_kpis.compute import prepare_frames
from crm_kpis.kpis import REGISTRY
from crm_kpis.kpis.base import Inputs, in_period
from crm_kpis.periods import ReportPeriod
from crm_kpis.sources import loading
from crm_kpis.sources.connections import CRM_CONN_ID, engine_for
from crm_kpis.sources.loading import load_extracts
from crm_kpis.sources.reading import _parse_timestamps, read_query
from crm_kpis.tools.demo.loader import load_database

OCTOBER = ReportPeriod.parse("monthly", "2026-10")  # UTC: [2026-10-01 00:00, 2026-11-01 00:00)


def _table(columns: str, rows: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=columns.split())
    for column in frame.columns:
        if column.endswith("_at"):
            frame[column] = pd.to_datetime(frame[column])
    return frame


#: product_id → (category, tier); product 99 does not exist
PRODUCTS = {1: ("software", 1), 2: ("software", 3), 3: ("services", 2), 4: ("hardware", 2),
            5: ("hardware", 1), 6: ("training", 1), 7: ("training", 2)}

HAND_MADE = {
    "products": _table("product_id name category tier list_price",
                       [(pid, f"p{pid}", cat, tier, 10.0) for pid, (cat, tier) in PRODUCTS.items()]),
    "customers": _table(
        "customer_id created_at segment country acquisition_channel",
        [(c, "2025-01-01", seg, "DE", "organic") for c, seg in
         [(1, "smb"), (2, "mid_market"), (4, "enterprise"), (5, "smb"), (6, "smb"), (7, "enterprise"), (8, "smb")]],
    ),  # customer 9 is missing from the table
    "orders": _table("order_id customer_id ordered_at status total_amount", [
        (100, 1, "2026-05-01 10:00:00", "completed", 1), (1, 1, "2026-10-01 00:00:00", "completed", 1),
        (2, 2, "2026-10-05 12:00:00", "completed", 1),
        (200, 4, "2026-03-01 10:00:00", "completed", 1), (4, 4, "2026-10-31 23:59:59", "completed", 1),
        (51, 5, "2026-10-07 10:00:00", "completed", 1), (52, 5, "2026-10-20 10:00:00", "completed", 1),
        (60, 6, "2026-09-15 10:00:00", "cancelled", 1), (61, 6, "2026-10-10 10:00:00", "completed", 1),
        (62, 6, "2026-11-01 00:00:00", "completed", 1),
        (71, 7, "2026-10-12 09:00:00", "completed", 1), (72, 7, "2026-10-12 09:00:00", "completed", 1),
        (81, 8, "2026-10-08 10:00:00", "completed", 1),
        (90, 9, "2026-01-01 10:00:00", "completed", 1), (91, 9, "2026-10-09 10:00:00", "completed", 1),
    ]),
    "order_lines": _table("order_id line_no product_id quantity unit_price", [
        (100, 1, 1, 1, 1), (1, 1, 1, 1, 1), (1, 2, 3, 1, 1), (1, 3, 99, 1, 1),
        (2, 1, 4, 1, 1),
        (200, 1, 2, 1, 1), (200, 2, 6, 1, 1), (4, 1, 7, 1, 1),
        (51, 1, 1, 1, 1), (52, 1, 5, 1, 1),
        (60, 1, 4, 1, 1), (61, 1, 4, 1, 1), (62, 1, 3, 1, 1),
        (71, 1, 1, 1, 1), (72, 1, 2, 1, 1), (72, 2, 3, 1, 1),
        (81, 1, 99, 1, 1),
        (90, 1, 5, 1, 1), (91, 1, 1, 1, 1),
    ]),
}

#: customer_id → (segment, lines_judged, lines_excluded, cross_sell, upsell), worked out by hand:
HAND_MADE_EXPECTED = {
    # May: software 1. Oct 1 00:00 (the period start, inside): software 1, services 2, product 99.
    # services is new and May is earlier → cross-sell; tier 2 > 1 → up-sell; product 99 excluded
    1: ("smb", 2, 1, 1, 1),
    # first order ever: nothing is earlier
    2: ("mid_market", 1, 0, 0, 0),
    # March: software 3, training 1. Oct 31 23:59:59 (inside): training 2 → known category, 2 < 3
    4: ("enterprise", 1, 0, 0, 0),
    # Oct 7: software 1 (first order). Oct 20: hardware 1 → new category after an earlier order;
    # tier 1 is not higher than 1
    5: ("smb", 2, 0, 1, 0),
    # the September order was cancelled, so Oct 10 (hardware 2) is the first; the order at
    # Nov 1 00:00 is the next period's
    6: ("smb", 1, 0, 0, 0),
    # two orders at one instant (software 1 | software 3, services 2): one purchase, the first
    7: ("enterprise", 3, 0, 0, 0),
    # only a line of an unknown product: no line to judge
    8: ("smb", 0, 1, 0, 0),
    # not in the customers table (segment unknown). January: hardware 1; October: software 1 →
    # new category; tier 1 is not higher than 1
    9: (None, 1, 0, 1, 0),
}


def _load(url: str) -> None:
    load_database(engine_for(url), "crm", HAND_MADE)


def check_hand_made(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Load the hand-made set at `url`, read the extract through the pipeline, check every flag
    and the two rates built from them."""
    _load(url)
    raw = read_query(engine_for(url), "crm/buyer_flags.sql", OCTOBER.sql_params())
    got = {int(r.customer_id): (None if pd.isna(r.segment) else r.segment, int(r.lines_judged), int(r.lines_excluded),
                                int(r.cross_sell), int(r.upsell)) for r in raw.itertuples()}
    assert got == HAND_MADE_EXPECTED

    monkeypatch.setattr(loading, "engine_for", lambda conn_id: engine_for(url))
    loaded = load_extracts({"buyer_flags"}, OCTOBER)
    # customer 8 is excluded (a buyer row); the lines of product 99 in orders 1 and 81 are counted
    assert loaded.rejected == {"buyer_flags": {"buyer_without_line_with_tier_and_category": 1,
                                               "order_line_missing_tier_or_category": 2}}
    inputs = Inputs(OCTOBER, prepare_frames(loaded.frames))
    cross = {(m.dimension, m.member): m for m in REGISTRY["sales.cross_sell_rate"].evaluate(inputs)}
    up = {(m.dimension, m.member): m for m in REGISTRY["sales.upsell_rate"].evaluate(inputs)}
    # buyers judged: 1, 2, 4, 5, 6, 7, 9 → cross-sell 1, 5, 9 → 3 / 7; up-sell 1 → 1 / 7
    assert (cross[("", "")].numerator, cross[("", "")].denominator) == (3, 7)
    assert cross[("", "")].value == pytest.approx(3 / 7)
    assert up[("", "")].value == pytest.approx(1 / 7)
    # smb: 1, 5, 6 → cross-sell 1, 5 → 2 / 3; customer 9's segment is unknown → 1 / 1
    assert cross[("segment", "smb")].value == pytest.approx(2 / 3)
    assert cross[("segment", "unknown")].value == pytest.approx(1 / 1)
    assert up[("segment", "enterprise")].value == pytest.approx(0 / 2)


def test_hand_made_flags_on_sqlite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    check_hand_made(f"sqlite:///{tmp_path / 'crm.db'}", monkeypatch)


def test_a_period_without_orders_gives_no_buyers_and_no_rate(tmp_path: Path, monkeypatch) -> None:
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    _load(url)
    monkeypatch.setattr(loading, "engine_for", lambda conn_id: engine_for(url))
    empty = ReportPeriod.parse("monthly", "2026-07")
    loaded = load_extracts({"buyer_flags"}, empty)
    assert loaded.rows_read == {"buyer_flags": 0} and loaded.rejected == {}
    headline = REGISTRY["sales.cross_sell_rate"].evaluate(Inputs(empty, prepare_frames(loaded.frames)))
    assert [(m.dimension, m.value, m.denominator) for m in headline if m.dimension == ""] == [("", None, 0)]


# ---------------------------------------------------------------------------------------------
# The oracle: the definition in pandas, over every completed line the buyers had until the end.

#: Every completed order line of the period's buyers, from their first order to the period's end.
FULL_HISTORY = """
SELECT o.customer_id, o.ordered_at, p.category, p.tier, c.segment
FROM orders o
JOIN order_lines l ON l.order_id = o.order_id
JOIN products p ON p.product_id = l.product_id
LEFT JOIN customers c ON c.customer_id = o.customer_id
WHERE o.status = 'completed' AND o.ordered_at < :end
  AND o.customer_id IN (SELECT customer_id FROM orders
                        WHERE status = 'completed' AND ordered_at >= :start AND ordered_at < :end)
"""


def flags_by_definition(lines: pd.DataFrame, period: ReportPeriod) -> pd.DataFrame:
    """Per buyer of the period: did a purchase in the period bring a category new to the buyer
    after an earlier purchase (cross-sell), or a higher tier than every earlier purchase (up-sell)?
    A purchase is everything a customer bought at one instant; "earlier" is strictly earlier."""
    lines = lines.dropna(subset=["category", "tier"])
    instants = (lines.groupby(["customer_id", "ordered_at"], as_index=False)["tier"].max()
                .sort_values(["customer_id", "ordered_at"], ignore_index=True))
    earlier_max = instants.groupby("customer_id")["tier"].cummax().groupby(instants["customer_id"]).shift()
    instants["upsell"] = (instants["tier"] > earlier_max).fillna(False).astype(bool)
    instants["has_earlier"] = instants["ordered_at"] > instants.groupby("customer_id")["ordered_at"].transform("min")
    first_buys = lines.groupby(["customer_id", "category"], as_index=False)["ordered_at"].min()
    new_category = first_buys[["customer_id", "ordered_at"]].drop_duplicates().assign(new_category=True)
    instants = instants.merge(new_category, on=["customer_id", "ordered_at"], how="left")
    instants["cross_sell"] = instants["new_category"].eq(True) & instants["has_earlier"]
    current = instants[in_period(instants["ordered_at"], period)]
    segments = lines.drop_duplicates("customer_id").set_index("customer_id")["segment"]
    flags = current.groupby("customer_id", as_index=False).agg(cross_sell=("cross_sell", "any"),
                                                                upsell=("upsell", "any"))
    flags.insert(1, "segment", flags["customer_id"].map(segments))
    return flags.sort_values("customer_id", ignore_index=True)


def test_the_definition_gives_the_hand_made_flags(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'crm.db'}"
    _load(url)
    with engine_for(url).connect() as conn:
        lines = _parse_timestamps(pd.read_sql_query(
            text(FULL_HISTORY), conn, params={"start": "2026-10-01 00:00:00", "end": "2026-11-01 00:00:00"}))
    oracle = flags_by_definition(lines, OCTOBER)
    expected = {c: (bool(e[3]), bool(e[4])) for c, e in HAND_MADE_EXPECTED.items() if e[1] > 0}
    assert {int(r.customer_id): (r.cross_sell, r.upsell) for r in oracle.itertuples()} == expected


@pytest.mark.parametrize("month", ["2025-10", "2026-03", "2026-10"])
def test_sql_flags_equal_the_definition_over_full_history(demo_sources, month):
    period = ReportPeriod.parse("monthly", month)
    engine = engine_for(CRM_CONN_ID)
    params = period.sql_params()
    flags = read_query(engine, "crm/buyer_flags.sql", params).sort_values("customer_id", ignore_index=True)
    with engine.connect() as conn:
        bound = {k: params[k].strftime("%Y-%m-%d %H:%M:%S") for k in ("start", "end")}
        full = _parse_timestamps(pd.read_sql_query(text(FULL_HISTORY), conn, params=bound))
    assert len(flags) < len(full) / 3  # the point: a row per buyer crosses the wire, not every line
    reference = flags_by_definition(full, period)
    assert reference["cross_sell"].sum() > 5 and reference["upsell"].sum() > 5  # both flags occur
    got = flags[["customer_id", "segment"]].assign(cross_sell=flags["cross_sell"].astype(bool),
                                                    upsell=flags["upsell"].astype(bool))
    pd.testing.assert_frame_equal(got, reference, check_dtype=False)
