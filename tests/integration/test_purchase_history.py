"""The purchase-history extract aggregates the buyers' earlier purchases in the database (one row
per category) instead of returning every earlier order line; the cross-sell and up-sell flags
must be exactly those computed from the full line history."""

import pandas as pd
import pytest
from sqlalchemy import text

from crm_kpis.kpis.base import Inputs
from crm_kpis.kpis.sales import _buyer_flags
from crm_kpis.periods import ReportPeriod
from crm_kpis.sources import CRM_CONN_ID, _parse_timestamps, engine_for, read_query

#: The reference definition: every completed line the period's buyers had before the period's end.
FULL_HISTORY = """
SELECT o.customer_id, o.order_id, o.ordered_at, p.category, p.tier, c.segment
FROM orders o
JOIN order_lines l ON l.order_id = o.order_id
JOIN products p ON p.product_id = l.product_id
LEFT JOIN customers c ON c.customer_id = o.customer_id
WHERE o.status = 'completed' AND o.ordered_at < :end
  AND o.customer_id IN (SELECT customer_id FROM orders
                        WHERE status = 'completed' AND ordered_at >= :start AND ordered_at < :end)
"""


@pytest.mark.parametrize("month", ["2025-10", "2026-03", "2026-10"])
def test_aggregated_history_gives_the_flags_of_the_full_history(demo_sources, month):
    period = ReportPeriod.parse("monthly", month)
    engine = engine_for(CRM_CONN_ID)
    params = period.sql_params()
    aggregated = read_query(engine, "crm/purchase_history.sql", params)
    with engine.connect() as conn:
        bound = {k: params[k].strftime("%Y-%m-%d %H:%M:%S") for k in ("start", "end")}
        full = _parse_timestamps(pd.read_sql_query(text(FULL_HISTORY), conn, params=bound))
    assert len(aggregated) < len(full)  # the point: fewer rows cross the wire
    flags = _buyer_flags(Inputs(period, {"purchase_history": aggregated})).sort_values("customer_id")
    reference = _buyer_flags(Inputs(period, {"purchase_history": full})).sort_values("customer_id")
    assert flags["cross_sell"].sum() > 0 and flags["upsell"].sum() > 0
    pd.testing.assert_frame_equal(flags.reset_index(drop=True), reference.reset_index(drop=True))
