"""Zendesk's satisfaction ratings as the CRM's CSAT answers (`fivetran_zendesk_satisfaction`), read
beside Stripe's customers in one PostgreSQL warehouse, one schema each, from Fivetran's own seeds for
both packages as shipped. The seeds hold no `satisfaction_rating` table (Fivetran's Zendesk package
does not model it): as shipped, the check passes and CSAT is n/a with the reason; the ratings, and the
organizations' external ids that match them to Stripe's customers, are rows this test adds.

By hand, March 2021 (ratings dated when answered, `updated_at`):
- ticket 1595 (seed: organization 370295712714, here external id cus_IvSD6mXKJ1pZeW): good, good, bad,
  and one offered and never answered (no answer);
- ticket 11071 (seed: no organization; requester 2222 in organization 370297696174, here external id
  cus_IrpAwGHpPSwzWv): good, matched through the requester;
- ticket 16988 (seed: organization 370469077513, no external id): bad, no customer: excluded, counted;
- ticket 1595 again: good, offered in March, answered 2 April: April's.
CSAT March = satisfied / answered with a customer = 3 / 4 = 0.75; feedback volume 4; April: 1 / 1.
"""

from __future__ import annotations

import pytest

from crm_kpis.compute import compute_area
from crm_kpis.periods import ReportPeriod
from crm_kpis.sources.check_command import main
from tests.fivetran_seeds import seeded_stack
from tests.integration.adapter_helpers import values
from tests.servers.test_fivetran_seeds_stripe import ADDED as STRIPE_ADDED

MATCH = {"table": "organization", "column": "external_id"}
STACK = {"stripe": {"adapter": "fivetran_stripe"},
         "zendesk": {"adapter": "fivetran_zendesk_satisfaction", "customer_ids": MATCH}}
_RATING = ('INSERT INTO "zendesk"."satisfaction_rating" (id, score, created_at, updated_at, ticket_id, requester_id, '
           "_fivetran_synced) VALUES ")
RATINGS = [
    'CREATE TABLE "zendesk"."satisfaction_rating" (id BIGINT, score TEXT, created_at TIMESTAMP, updated_at TIMESTAMP, '
    "ticket_id BIGINT, requester_id BIGINT, comment TEXT, _fivetran_synced TIMESTAMP)",
    _RATING + "(1, 'good', '2021-03-01 09:00:00', '2021-03-02 09:00:00', 1595, 396331237134, '2021-04-03 00:00:00'), "
              "(2, 'good', '2021-03-03 09:00:00', '2021-03-04 09:00:00', 1595, 396331237134, '2021-04-03 00:00:00'), "
              "(3, 'bad', '2021-03-05 09:00:00', '2021-03-06 09:00:00', 1595, 396331237134, '2021-04-03 00:00:00'), "
              "(4, 'offered', '2021-03-07 09:00:00', '2021-03-07 09:00:00', 1595, 396331237134, '2021-04-03 00:00:00'), "
              "(5, 'good', '2021-03-08 09:00:00', '2021-03-09 09:00:00', 11071, 2222, '2021-04-03 00:00:00'), "
              "(6, 'bad', '2021-03-10 09:00:00', '2021-03-11 09:00:00', 16988, 1500656884401, '2021-04-03 00:00:00'), "
              "(7, 'good', '2021-03-30 09:00:00', '2021-04-02 09:00:00', 1595, 396331237134, '2021-04-03 00:00:00')",
    "INSERT INTO {organization} (id, external_id, name) VALUES (370295712714, 'cus_IvSD6mXKJ1pZeW', 'Acme'), "
    "(370297696174, 'cus_IrpAwGHpPSwzWv', 'Globex'), (370469077513, NULL, 'Initech')",
]


def operations(month: str) -> dict[str, tuple]:
    return {k[0]: v for k, v in values(ReportPeriod.parse("monthly", month), "operations").items() if k[1] == ""}


def test_the_seeds_as_shipped_pass_and_csat_says_why_it_is_na(postgres, tmp_path, monkeypatch, capsys):
    seeded_stack(postgres, tmp_path, monkeypatch, STACK, {"stripe": STRIPE_ADDED})
    code = main(["check"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "  survey_responses: fivetran_zendesk_satisfaction (schema zendesk)" in out, out
    assert "not synced (optional): fivetran_zendesk_satisfaction: satisfaction_rating: no satisfaction ratings are " \
           "synced" in out, out
    csat = operations("2021-03")["operations.csat"]
    assert csat[0] is None and "no satisfaction ratings are synced" in csat[3], csat


def test_ratings_give_csat_by_hand_and_the_unmatched_one_is_counted(postgres, tmp_path, monkeypatch, capsys):
    seeded_stack(postgres, tmp_path, monkeypatch, STACK, {"stripe": STRIPE_ADDED, "zendesk": RATINGS})
    code = main(["check"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "customers matched: fivetran_zendesk_satisfaction: 2 of the 3 customers its rows refer to match a customer " \
           "of fivetran_stripe through organization.external_id; 1 does not: their survey_responses have no customer " \
           "(fill organization.external_id for them)" in out, out
    march, april = operations("2021-03"), operations("2021-04")
    assert march["operations.csat"][:3] == (pytest.approx(3 / 4), 3, 4), march["operations.csat"]
    assert march["operations.feedback_volume"][0] == 4
    assert april["operations.csat"][:3] == (pytest.approx(1.0), 1, 1)
    # the rating without a customer is excluded and counted, not silently dropped
    result = compute_area("operations", ReportPeriod.parse("monthly", "2021-03"))
    assert result.excluded["survey_responses"] == {"orphan_customer": {"keys": {"6": 1}}}
    # NPS is no question Zendesk asks: n/a in Zendesk's terms, not 0
    nps = values(ReportPeriod.parse("monthly", "2021-03"), "marketing")[("marketing.nps", "", "")]
    assert nps[0] is None and "asks no 0-10 recommendation question" in nps[3], nps
