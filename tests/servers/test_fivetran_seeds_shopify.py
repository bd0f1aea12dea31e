"""Conformance of the fivetran_shopify adapter with Fivetran's own test data for its Shopify package
(`../shared/data/fivetran/shopify`, the REST API seeds as shipped, typed as its integration-test
project types them), on SQLite and on PostgreSQL in a schema of its own.

The seeds' orders, by hand (`shopify_order_data.csv`): September 2020, three paid orders of two
synced customers: 2.80 + 3.79 + 5.39 GBP = 11.98; four customers created that month. May 2025: five
paid orders (1000001-1000005: 100.01, 100.02, 50.00, 205.00, 160.00 USD) whose customers the seeds
do not sync, and the seeds' refunds and adjustments name other orders. The cases they lack are rows
this test adds (`ADDED`): the five customers, a partial refund of order 1000004 (a line's 40.00 and
its 2.00 tax, and 5.00 of shipping as an adjustment of -5.00), and orders that are no revenue (one
cancelled, one voided, one refunded in full, one a test order).
"""

from __future__ import annotations

import pytest

from crm_kpis.periods import ReportPeriod
from tests.fivetran_seeds import checked, seeded_connection
from tests.integration.adapter_helpers import company

ADAPTER = "fivetran_shopify"
_ORDER = ("INSERT INTO {order} (id, customer_id, created_at, total_price, financial_status, cancelled_at, test, "
          "currency) VALUES ")
ADDED = [
    "INSERT INTO {customer} (id, created_at) VALUES (10001, '2025-04-20 10:00:00'), (10002, '2025-04-21 10:00:00'), "
    "(10003, '2025-05-03 10:00:00'), (10004, '2025-05-04 10:00:00'), (10005, '2025-05-05 10:00:00')",
    "INSERT INTO {refund} (id, order_id, created_at) VALUES (9001, 1000004, '2025-05-10 10:00:00')",
    "INSERT INTO {order_line_refund} (id, refund_id, order_line_id, quantity, subtotal, total_tax) VALUES "
    "(9101, 9001, 1, 1, 40.00, 2.00)",
    "INSERT INTO {order_adjustment} (id, order_id, refund_id, amount, tax_amount, kind) VALUES "
    "(9201, 1000004, 9001, -5.00, 0, 'shipping_refund')",
    _ORDER + "(1000006, 10001, '2025-05-06 10:00:00', 70.00, 'paid', '2025-05-07 10:00:00', FALSE, 'USD')",
    _ORDER + "(1000007, 10002, '2025-05-06 11:00:00', 30.00, 'voided', NULL, FALSE, 'USD')",
    _ORDER + "(1000008, 10003, '2025-05-06 12:00:00', 80.00, 'refunded', NULL, FALSE, 'USD')",
    _ORDER + "(1000009, 10004, '2025-05-06 13:00:00', 999.00, 'paid', NULL, TRUE, 'USD')",
]


@pytest.fixture(params=["sqlite", "postgresql"])
def seeded(request, postgres, tmp_path, monkeypatch):
    return seeded_connection(request.param, postgres, tmp_path, monkeypatch, "shopify", ADAPTER, "crm", ADDED)


def test_the_seeds_pass_the_check(seeded, capsys):
    loaded = seeded[3]
    assert loaded["order"] == 8 and loaded["customer"] == 4  # as shipped; the added rows on top
    out = checked(seeded, ADAPTER, "crm", capsys)
    assert "Shopify synced by Fivetran: ok" in out, out


def test_orders_and_customers_worked_out_by_hand(seeded):
    september = company(ReportPeriod.parse("monthly", "2020-09"))
    assert september["sales.revenue"][0] == pytest.approx(2.80 + 3.79 + 5.39, abs=1e-9)
    assert september["sales.orders"][0] == 3
    assert september["sales.aov"][0] == pytest.approx((2.80 + 3.79 + 5.39) / 3, abs=1e-9)
    assert september["sales.new_customers"][0] == 4
    may = company(ReportPeriod.parse("monthly", "2025-05"))
    # 1000004: 205.00 less the refunded line (40.00 + 2.00 tax) and the refunded shipping (-5.00);
    # the cancelled, voided, fully refunded and test orders are no revenue
    revenue = 100.01 + 100.02 + 50.00 + (205.00 - 40.00 - 2.00 - 5.00) + 160.00
    assert may["sales.revenue"][0] == pytest.approx(revenue, abs=1e-9)
    assert may["sales.orders"][0] == 5
    assert may["sales.new_customers"][0] == 3  # 10003-10005; 10001 and 10002 joined in April
    # Shopify records no churn: n/a in its terms, not 0
    churn = may["sales.churn_rate"]
    assert churn[0] is None and "Shopify records no churn" in churn[3], churn
