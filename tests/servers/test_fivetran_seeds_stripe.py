"""Conformance of the fivetran_stripe adapter with Fivetran's own test data for its Stripe package
(`../shared/data/fivetran/stripe`: seeds as shipped, typed as its integration-test project types
them), on SQLite and PostgreSQL.

What the seeds hold: 12 customers (one deleted), 16 charges that all failed (no order), both
subscription tables (`subscription`, an older connector's, and `subscription_history`, in history
mode: sdgfs4536's current version, and sfjytkyu876's only version, not current), items and plans.
The cases they lack are rows this test adds (`ADDED`), worked out by hand below.
"""

from __future__ import annotations

import pytest

from crm_kpis.periods import ReportPeriod
from tests.fivetran_seeds import checked, seeded_connection
from tests.integration.adapter_helpers import company

ADAPTER = "fivetran_stripe"
_CHARGE = ("INSERT INTO {charge} (id, amount, amount_refunded, captured, created, currency, customer_id, livemode, "
           "paid, refunded, status, balance_transaction_id) VALUES ")
_TXN = "INSERT INTO {balance_transaction} (id, amount, currency, created, status, type) VALUES "
_SUB = ("INSERT INTO {subscription_history} (id, _fivetran_active, customer_id, start_date, current_period_end, "
        "ended_at, livemode, status) VALUES ")
ADDED = [
    # February 2021: $100.00 settled; $50.00 less $10.00 refunded; ¥1,500 settled as $13.80
    _CHARGE + "('ch_a', 10000, 0, TRUE, '2021-02-05 10:00:00', 'usd', 'cus_IrpAwGHpPSwzWv', TRUE, TRUE, FALSE, "
              "'succeeded', 'txn_a')",
    _TXN + "('txn_a', 10000, 'usd', '2021-02-05 10:00:00', 'available', 'charge')",
    _CHARGE + "('ch_b', 5000, 1000, TRUE, '2021-02-06 10:00:00', 'usd', 'cus_IvSD6mXKJ1pZeW', TRUE, TRUE, FALSE, "
              "'succeeded', NULL)",
    _CHARGE + "('ch_d', 1500, 0, TRUE, '2021-02-07 10:00:00', 'jpy', 'cus_IvSD6mXKJ1pZeW', TRUE, TRUE, FALSE, "
              "'succeeded', 'txn_d')",
    _TXN + "('txn_d', 1380, 'usd', '2021-02-07 10:00:00', 'available', 'charge')",
    # not revenue: refunded in full, a test-mode charge, an uncaptured authorisation
    _CHARGE + "('ch_c', 3000, 3000, TRUE, '2021-02-08 10:00:00', 'usd', 'cus_IvSD6mXKJ1pZeW', TRUE, TRUE, TRUE, "
              "'succeeded', NULL)",
    _CHARGE + "('ch_e', 7000, 0, TRUE, '2021-02-09 10:00:00', 'usd', 'cus_IvSD6mXKJ1pZeW', FALSE, TRUE, FALSE, "
              "'succeeded', NULL)",
    _CHARGE + "('ch_f', 8000, 0, FALSE, '2021-02-10 10:00:00', 'usd', 'cus_IvSD6mXKJ1pZeW', TRUE, TRUE, FALSE, "
              "'succeeded', NULL)",
    # the deleted customer's charge: an order of an unknown customer, excluded and counted
    _CHARGE + "('ch_g', 9000, 0, TRUE, '2021-02-11 10:00:00', 'usd', 'cus_IuKuZJLG9mNRn2', TRUE, TRUE, FALSE, "
              "'succeeded', NULL)",
    # cus_IvSD6mXKJ1pZeW subscribes on 11 February to 3 × a yearly $12,000 plan, ended 10 March
    _SUB + "('sub_x', TRUE, 'cus_IvSD6mXKJ1pZeW', '2021-02-11 09:30:00', '2022-02-11 09:30:00', "
           "'2021-03-10 12:00:00', TRUE, 'canceled')",
    "INSERT INTO {plan} (id, amount, currency, interval, interval_count, product_id, livemode) "
    "VALUES ('yr1', 1200000, 'usd', 'year', 1, 'prod_Y', TRUE)",
    "INSERT INTO {subscription_item} (id, plan_id, quantity, subscription_id) VALUES ('si_x', 'yr1', 3, 'sub_x')",
]


@pytest.fixture(params=["sqlite", "postgresql"])
def seeded(request, postgres, tmp_path, monkeypatch):
    return seeded_connection(request.param, postgres, tmp_path, monkeypatch, "stripe", ADAPTER, "crm", ADDED)


def test_the_seeds_as_shipped_pass_the_check(seeded, capsys):
    loaded = seeded[3]
    assert loaded["charge"] == 16 and loaded["customer"] == 12 and loaded["subscription_history"] == 2
    out = checked(seeded, ADAPTER, "crm", capsys)
    assert "Stripe synced by Fivetran: ok" in out, out


def test_orders_customers_and_mrr_worked_out_by_hand(seeded):
    february = company(ReportPeriod.parse("monthly", "2021-02"))
    # $100.00 (its balance transaction) + $50.00 × (5,000 − 1,000) / 5,000 + ¥1,500 settled as $13.80;
    # the seeds' 16 failed charges, the refunded one, the test-mode one, the uncaptured one are none
    revenue = 100.00 + 50.00 * (5000 - 1000) / 5000 + 13.80
    assert february["sales.revenue"][0] == pytest.approx(revenue, abs=1e-9)
    assert february["sales.orders"][0] == 3
    # live customers created in February, the deleted cus_IuKuZJLG9mNRn2 left out: 6
    assert february["sales.new_customers"][0] == 6
    # 3 × $12,000 a year = $3,000 a month, running at the end of February; the seeds' own sdgfs4536
    # ($1,500 a month: plan zb1, 150,000 cents monthly) ended on 19 February
    assert february["sales.mrr"][0] == pytest.approx(3 * 12_000 / 12, abs=1e-9)
    assert company(ReportPeriod.parse("daily", "2021-02-18"))["sales.mrr"][0] == \
        pytest.approx(150_000 / 100 + 3 * 12_000 / 12, abs=1e-9)
    # renewals are not Stripe's: n/a with the reason
    assert february["sales.renewal_rate"][0] is None
    assert "renew in place" in february["sales.renewal_rate"][3]


def test_a_customer_whose_subscriptions_all_ended_churns(seeded):
    # active at the start of March: the 2 January and 6 February customers (not deleted); sub_x's
    # customer churns on 10 March, when his only subscription ended
    march = company(ReportPeriod.parse("monthly", "2021-03"))
    assert march["sales.churn_rate"][0] == pytest.approx(1 / (2 + 6), abs=1e-9)
