"""The demo business written in a synced SaaS layout, as Fivetran would write it (`--layout`).

Why: the adapters (crm_kpis.sources.adapters) are proven by a differential test: the same business in the
reference tables and in a synced layout must give the same KPIs through the adapter. So each
layout here is the inverse of its adapter's SELECTs: every reference fact the KPIs read is written
where the synced layout records it (a ticket's resolution as status changes in
ticket_field_history, its first response as an agent's public comment, an agent's team as a group
membership). What the layout cannot record (agent hours, calls, a complaint type) is left out.

The tables are created by pandas, not by our DDL files: a synced schema is the connector's, not
the product's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd
from sqlalchemy import Engine, Numeric, String, text

from crm_kpis.tools.demo.loader import _for_sqlite

#: a requester (end user) per ticket: ids clear of the agents'
REQUESTER_ID_OFFSET = 10_000_000
#: a customer's Zendesk organization, and a rating offered but never answered: ids of their own
ORGANIZATION_ID_OFFSET, RATING_ID_OFFSET = 20_000_000, 30_000_000
SLA_VERSION_AT = pd.Timestamp("2020-01-01 00:00:00")
ZENDESK_CHANNEL = {"phone": "voice", "social": "twitter"}
ZENDESK_TYPE = {"question": "question", "incident": "incident", "request": "task", "complaint": "question"}


def _status_history(tickets: pd.DataFrame) -> pd.DataFrame:
    """Status changes that give back each ticket's resolution and reopen count: `new` at creation,
    `k` solved/open cycles between the first response (or creation) and the resolution, `solved` at
    `resolved_at`, `closed` at `closed_at`; an unresolved ticket's current status after creation."""
    rows: list[tuple[int, str, pd.Timestamp]] = []
    for t in tickets.itertuples(index=False):
        rows.append((t.ticket_id, "new", t.created_at))
        if pd.isna(t.resolved_at):
            if t.status != "open" or not pd.isna(t.first_response_at):
                rows.append((t.ticket_id, t.status, t.first_response_at if not pd.isna(t.first_response_at)
                             else t.created_at + pd.Timedelta(seconds=1)))
            continue
        start = t.first_response_at if not pd.isna(t.first_response_at) else t.created_at
        rows.append((t.ticket_id, "open", start))
        k, span = int(t.reopen_count), (t.resolved_at - start).total_seconds()
        for i in range(1, k + 1):  # solved, then reopened, strictly between start and the resolution
            rows.append((t.ticket_id, "solved", start + pd.Timedelta(seconds=int(span * (2 * i - 1) / (2 * k + 1)))))
            rows.append((t.ticket_id, "open", start + pd.Timedelta(seconds=int(span * 2 * i / (2 * k + 1)))))
        rows.append((t.ticket_id, "solved", t.resolved_at))
        if not pd.isna(t.closed_at) and t.status == "closed":
            rows.append((t.ticket_id, "closed", t.closed_at))
    out = pd.DataFrame(rows, columns=["ticket_id", "value", "updated"])
    out.insert(1, "field_name", "status")
    out["user_id"] = pd.NA
    return out


def _last_change(tickets: pd.DataFrame) -> pd.Series:
    """A ticket's `updated_at`: its close, else its resolution, else its first response, else its creation
    (no later than any status change `_status_history` writes)."""
    return (tickets["closed_at"].where(tickets["status"] == "closed")
            .fillna(tickets["resolved_at"]).fillna(tickets["first_response_at"])
            .fillna(tickets["created_at"] + pd.Timedelta(seconds=1)))


def fivetran_zendesk(helpdesk: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The reference helpdesk tables as Fivetran's Zendesk Support tables."""
    agents, tickets, messages, sla = (helpdesk[t] for t in ("agents", "tickets", "ticket_messages", "sla_policies"))
    teams = sorted(agents["team"].dropna().unique())
    group = pd.DataFrame({"id": np.arange(1, len(teams) + 1), "name": teams, "_fivetran_deleted": False})
    group_id = dict(zip(teams, group["id"], strict=True))
    requesters = tickets["ticket_id"].to_numpy() + REQUESTER_ID_OFFSET
    user = pd.concat([
        pd.DataFrame({"id": agents["agent_id"], "name": agents["name"], "role": "agent"}),
        pd.DataFrame({"id": requesters, "name": [f"Requester {i}" for i in tickets["ticket_id"]], "role": "end-user"}),
    ], ignore_index=True)
    user["_fivetran_deleted"] = False
    # each customer a Zendesk organization, its external id the customer's Stripe id (how a stack
    # matches them, crm_kpis.sources.stack); a requester is in his ticket's organization
    customers = tickets["customer_id"].dropna().astype("int64").unique()
    organization = pd.DataFrame({"id": customers + ORGANIZATION_ID_OFFSET, "name": [f"Customer {c}" for c in customers],
                                 "external_id": _stripe_id("cus", pd.Series(customers))})
    ticket_org = (tickets["customer_id"].astype("Int64") + ORGANIZATION_ID_OFFSET).reset_index(drop=True)
    user["organization_id"] = pd.concat([pd.Series(pd.NA, index=range(len(agents)), dtype="Int64"), ticket_org],
                                        ignore_index=True)
    group_member = pd.DataFrame({"id": agents["agent_id"], "user_id": agents["agent_id"],
                                 "group_id": agents["team"].map(group_id), "_fivetran_deleted": False})
    ticket = pd.DataFrame({
        "id": tickets["ticket_id"],
        "created_at": tickets["created_at"],
        "status": tickets["status"],
        "priority": tickets["priority"],
        "type": tickets["category"].map(ZENDESK_TYPE),
        "via_channel": tickets["channel"].map(lambda c: ZENDESK_CHANNEL.get(c, c)),
        "assignee_id": tickets["assignee_agent_id"],
        # the ticket's group: its assignee's team (the reference records a team per agent)
        "group_id": tickets["assignee_agent_id"].map(dict(zip(agents["agent_id"], agents["team"].map(group_id),
                                                               strict=True))).astype("Int64"),
        "requester_id": requesters,
        "organization_id": ticket_org.array,
        "_fivetran_deleted": False,
        "updated_at": _last_change(tickets),
    })
    requester_of = dict(zip(tickets["ticket_id"], requesters, strict=True))
    comment = pd.DataFrame({
        "id": messages["message_id"],
        "ticket_id": messages["ticket_id"],
        "user_id": messages["agent_id"].where(messages["author"] == "agent",
                                              messages["ticket_id"].map(requester_of)).astype("Int64"),
        "created": messages["created_at"],
        "public": messages["public"].astype(bool),
        "_fivetran_deleted": False,
    })
    metrics = [("first_reply_time", "first_response_minutes"), ("requester_wait_time", "resolution_minutes")]
    sla_metric = pd.DataFrame([
        {"index": i, "sla_policy_id": 1, "sla_policy_updated_at": SLA_VERSION_AT, "business_hours": False,
         "metric": metric, "priority": row["priority"], "target": int(row[column])}
        for i, (row, (metric, column)) in enumerate((r, m) for _, r in sla.iterrows() for m in metrics)
    ])
    return {"ticket": ticket, "ticket_field_history": _status_history(tickets), "ticket_comment": comment,
            "user": user, "group": group, "group_member": group_member, "sla_policy_metric_history": sla_metric,
            "organization": organization}


def zendesk_satisfaction(crm: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The CRM's CSAT answers as Zendesk's satisfaction ratings (beside `fivetran_zendesk`'s tables in
    the same schema): 4 or 5 is `good`, below `bad`, answered a day after it was offered by the
    ticket's requester; a rating is also offered on a tenth of those tickets again and never answered."""
    csat = crm["survey_responses"]
    csat = csat[(csat["survey"] == "csat") & csat["ticket_id"].notna()]
    answered = pd.DataFrame({
        "id": csat["response_id"].to_numpy(), "score": np.where(csat["score"] >= 4, "good", "bad"),
        "created_at": (csat["responded_at"] - pd.Timedelta(days=1)).to_numpy(), "updated_at": csat["responded_at"].to_numpy(),
        "ticket_id": csat["ticket_id"].astype("int64").to_numpy(),
        "requester_id": csat["ticket_id"].astype("int64").to_numpy() + REQUESTER_ID_OFFSET, "comment": None})
    offered = answered.iloc[::10].assign(id=lambda f: f["id"] + RATING_ID_OFFSET, score="offered",
                                          updated_at=lambda f: f["created_at"])
    return {"satisfaction_rating": pd.concat([answered, offered], ignore_index=True).assign(_fivetran_deleted=False)}


SF_STAGE = {"qualification": "Qualification", "proposal": "Proposal/Price Quote", "negotiation": "Negotiation/Review",
            "closed_won": "Closed Won", "closed_lost": "Closed Lost"}
SF_TYPE = {"new_business": "New Customer", "upsell": "Existing Customer - Upgrade", "renewal": "Renewal",
           "cross_sell": "Cross-Sell"}
SF_CAMPAIGN = {"email": "Email", "paid_search": "Advertisement", "social": "Social Media", "events": "Seminar / Conference",
               "referral": "Referral Program", "content": "Webinar"}
HEADCOUNT = {"smb": 50, "mid_market": 500, "enterprise": 5000}


def _sf_id(prefix: str, values: pd.Series) -> pd.Series:
    """Salesforce-shaped 18-character text ids (the key prefix says the object: 00Q a lead, 006 an
    opportunity); missing stays missing."""
    return values.map(lambda v: None if pd.isna(v) else f"{prefix}{int(v):015d}").astype(object)


def fivetran_salesforce(crm: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The reference CRM tables a Salesforce org keeps, as Fivetran's Salesforce tables."""
    reps, customers, leads, opps, stages, acts, campaigns = (
        crm[t] for t in ("sales_reps", "customers", "leads", "opportunities", "opportunity_stage_history",
                         "sales_activities", "campaigns"))
    teams = sorted(reps["team"].dropna().unique())
    user_role = pd.DataFrame({"id": [f"00E{i:015d}" for i in range(1, len(teams) + 1)], "name": teams})
    role_of = dict(zip(teams, user_role["id"], strict=True))
    user = pd.DataFrame({"id": _sf_id("005", reps["rep_id"]), "name": reps["name"], "user_role_id": reps["team"].map(role_of)})
    account = pd.DataFrame({
        "id": _sf_id("001", customers["customer_id"]), "created_date": customers["created_at"], "type": "Customer - Direct",
        "number_of_employees": customers["segment"].map(HEADCOUNT).astype("Int64"),
        "billing_country_code": customers["country"], "account_source": customers["acquisition_channel"],
        "is_deleted": False})
    opportunity = pd.DataFrame({
        "id": _sf_id("006", opps["opportunity_id"]), "account_id": _sf_id("001", opps["customer_id"]),
        "owner_id": _sf_id("005", opps["owner_rep_id"]), "type": opps["kind"].map(SF_TYPE),
        "stage_name": opps["stage"].map(SF_STAGE), "amount": opps["amount"], "created_date": opps["created_at"],
        "close_date": opps["closed_at"].dt.normalize(), "is_closed": opps["outcome"].notna(),
        "is_won": opps["outcome"] == "won", "is_deleted": False})
    history = pd.DataFrame({"opportunity_id": _sf_id("006", stages["opportunity_id"]),
                            "stage_name": stages["stage"].map(SF_STAGE), "created_date": stages["entered_at"],
                            "is_deleted": False})
    history.insert(0, "id", [f"008{i:015d}" for i in range(1, len(history) + 1)])
    status = {"new": "Open - Not Contacted", "contacted": "Working - Contacted", "qualified": "Qualified",
              "converted": "Closed - Converted", "disqualified": "Closed - Not Converted"}
    lead = pd.DataFrame({
        "id": _sf_id("00Q", leads["lead_id"]), "created_date": leads["created_at"], "lead_source": leads["source_channel"],
        "owner_id": _sf_id("005", leads["owner_rep_id"]), "status": leads["status"].map(status),
        "is_converted": leads["converted_at"].notna(), "converted_date": leads["converted_at"].dt.normalize(),
        "converted_account_id": _sf_id("001", leads["customer_id"]).where(leads["converted_at"].notna(), None),
        "is_deleted": False})
    def activity(frame: pd.DataFrame, prefix: str) -> pd.DataFrame:
        return pd.DataFrame({"id": _sf_id(prefix, frame["activity_id"]), "owner_id": _sf_id("005", frame["rep_id"]),
                             "who_id": _sf_id("00Q", frame["lead_id"]), "what_id": _sf_id("006", frame["opportunity_id"])})
    calls_emails = acts[acts["kind"].isin(["call", "email"])]
    task = activity(calls_emails, "00T").assign(
        type=calls_emails["kind"].map({"call": "Call", "email": "Email"}).to_numpy(), task_subtype=None,
        created_date=calls_emails["occurred_at"].to_numpy(), is_deleted=False)
    task["task_subtype"] = task["type"]
    meetings = acts[acts["kind"] == "meeting"]
    event = activity(meetings, "00U").assign(start_date_time=meetings["occurred_at"].to_numpy(), is_deleted=False)
    campaign = pd.DataFrame({"id": _sf_id("701", campaigns["campaign_id"]), "name": campaigns["name"],
                             "type": campaigns["channel"].map(SF_CAMPAIGN), "start_date": campaigns["started_on"],
                             "end_date": campaigns["ended_on"], "actual_cost": campaigns["cost"], "is_deleted": False})
    return {"account": account, "opportunity": opportunity, "opportunity_history": history, "lead": lead, "user": user,
            "user_role": user_role, "task": task, "event": event, "campaign": campaign}


HUBSPOT_STAGES = pd.DataFrame({
    "stage_id": ["qualifiedtobuy", "contractsent", "decisionmakerboughtin", "closedwon", "closedlost"],
    "label": ["Qualified To Buy", "Contract Sent", "Decision Maker Bought-In", "Closed Won", "Closed Lost"],
    "probability": [0.4, 0.9, 0.8, 1.0, 0.0], "closed_won": [False, False, False, True, False],
    "pipeline_id": "default", "display_order": range(5), "active": True, "_fivetran_deleted": False})
HUBSPOT_STAGE_ID = dict(zip(["qualification", "proposal", "negotiation", "closed_won", "closed_lost"],
                            HUBSPOT_STAGES["stage_id"], strict=True))
HUBSPOT_DEALTYPE = {"new_business": "newbusiness", "upsell": "existingbusiness", "renewal": "renewal",
                    "cross_sell": "crosssell"}
#: contacts and deals get ids of their own ranges (HubSpot's objects are numbered apart)
CONTACT_ID_OFFSET, ENGAGEMENT_ID_OFFSET = 50_000_000, 90_000_000


def fivetran_hubspot(crm: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The reference CRM tables a HubSpot portal keeps, as Fivetran's HubSpot tables (each owner in
    his team, as his primary one)."""
    reps, customers, leads, opps, stages, acts = (
        crm[t] for t in ("sales_reps", "customers", "leads", "opportunities", "opportunity_stage_history",
                         "sales_activities"))
    owner = pd.DataFrame({"owner_id": reps["rep_id"], "first_name": reps["name"], "email": None})
    names = sorted(reps["team"].dropna().unique())
    team = pd.DataFrame({"id": range(1, len(names) + 1), "name": names, "_fivetran_deleted": False})
    in_team = reps[reps["team"].notna()]
    team_id = dict(zip(names, team["id"], strict=True))
    owner_team = pd.DataFrame({"owner_id": in_team["rep_id"], "team_id": in_team["team"].map(team_id),
                               "is_team_primary": True, "_fivetran_deleted": False})
    company = pd.DataFrame({
        "id": customers["customer_id"], "is_deleted": False, "property_createdate": customers["created_at"],
        "property_numberofemployees": customers["segment"].map(HEADCOUNT).astype("Int64"),
        "property_country": customers["country"], "property_hs_analytics_source": customers["acquisition_channel"],
        "property_hs_lifecyclestage_customer_date": customers["created_at"],
        # a custom property a company's Stripe sync writes: how a stack matches its customers to Stripe's
        "property_stripe_customer_id": _stripe_id("cus", customers["customer_id"])})
    contact = pd.DataFrame({
        "id": leads["lead_id"] + CONTACT_ID_OFFSET, "_fivetran_deleted": False,
        "property_createdate": leads["created_at"], "property_hs_analytics_source": leads["source_channel"],
        "property_hubspot_owner_id": leads["owner_rep_id"],
        "property_hs_lifecyclestage_customer_date": leads["converted_at"],
        "property_associatedcompanyid": leads["customer_id"]})
    deal = pd.DataFrame({
        "deal_id": opps["opportunity_id"], "is_deleted": False, "owner_id": opps["owner_rep_id"],
        "deal_pipeline_id": "default", "deal_pipeline_stage_id": opps["stage"].map(HUBSPOT_STAGE_ID),
        "property_amount": opps["amount"], "property_createdate": opps["created_at"],
        "property_dealtype": opps["kind"].map(HUBSPOT_DEALTYPE)})
    with_company = opps[opps["customer_id"].notna()]
    deal_company = pd.DataFrame({"deal_id": with_company["opportunity_id"],
                                 "company_id": with_company["customer_id"].astype("int64")})
    deal_stage = pd.DataFrame({"deal_id": stages["opportunity_id"], "value": stages["stage"].map(HUBSPOT_STAGE_ID),
                               "date_entered": stages["entered_at"], "source": "CRM_UI"})
    kinds = acts[acts["kind"].isin(["call", "email", "meeting"])]
    # the current connector (HubSpot's v3 API): engagement keeps id and type, each type's table the
    # time and owner
    engagement = pd.DataFrame({"id": kinds["activity_id"] + ENGAGEMENT_ID_OFFSET, "type": kinds["kind"].str.upper(),
                               "portal_id": 4727653})
    by_type = {f"engagement_{kind}": pd.DataFrame({
        "engagement_id": rows["activity_id"] + ENGAGEMENT_ID_OFFSET, "_fivetran_deleted": False,
        "property_hs_timestamp": rows["occurred_at"], "property_hubspot_owner_id": rows["rep_id"],
        "type": kind.upper()}) for kind, rows in kinds.groupby("kind")}
    on_lead, on_deal = kinds[kinds["lead_id"].notna()], kinds[kinds["opportunity_id"].notna()]
    engagement_contact = pd.DataFrame({"engagement_id": on_lead["activity_id"] + ENGAGEMENT_ID_OFFSET,
                                       "contact_id": on_lead["lead_id"].astype("int64") + CONTACT_ID_OFFSET})
    engagement_deal = pd.DataFrame({"engagement_id": on_deal["activity_id"] + ENGAGEMENT_ID_OFFSET,
                                    "deal_id": on_deal["opportunity_id"].astype("int64")})
    return {"owner": owner, "owner_team": owner_team, "team": team, "company": company,
            "email_event": _hubspot_email_events(crm["email_messages"]), "contact": contact, "deal": deal, "deal_company": deal_company,
            "deal_stage": deal_stage, "deal_pipeline_stage": HUBSPOT_STAGES.copy(), "engagement": engagement,
            "engagement_contact": engagement_contact, "engagement_deal": engagement_deal, **by_type}


def _hubspot_email_events(messages: pd.DataFrame) -> pd.DataFrame:
    """The reference messages as HubSpot's email events: a SENT event each, and the DELIVERED, OPEN
    and CLICK events that name it (sent_by_id); the demo's messages are all marketing email."""
    def events(rows: pd.DataFrame, kind: str, at: str) -> pd.DataFrame:
        sent = "m" + rows["message_id"].astype(str)
        return pd.DataFrame({"id": sent if kind == "SENT" else kind[:2].lower() + rows["message_id"].astype(str),
                             "type": kind, "created": rows[at], "sent_by_id": None if kind == "SENT" else sent,
                             "email_campaign_id": rows["campaign_id"], "recipient": rows["subscriber_id"].astype(str),
                             "filtered_event": False})
    return pd.concat([events(messages, "SENT", "sent_at"),
                      events(messages[messages["delivered"].astype(bool)], "DELIVERED", "sent_at"),
                      events(messages[messages["opened_at"].notna()], "OPEN", "opened_at"),
                      events(messages[messages["clicked_at"].notna()], "CLICK", "clicked_at")], ignore_index=True)


def _stripe_id(prefix: str, values: pd.Series) -> pd.Series:
    """Stripe-shaped text ids (`cus_…`, `ch_…`): Stripe names its objects, it does not number them."""
    return values.map(lambda v: None if pd.isna(v) else f"{prefix}_{int(v):010d}").astype(object)


def _stripe_ended(subscriptions: pd.DataFrame, horizon: pd.Timestamp) -> pd.Series:
    """When Stripe says each reference subscription ended: cancelled, or its term over (renewed or
    lapsed: Stripe ends one subscription and starts the next); NaT while it runs."""
    term_over = subscriptions["term_ends_at"].where(subscriptions["term_ends_at"] < horizon)
    return subscriptions["cancelled_at"].fillna(term_over)


def _no_ids(frame: pd.DataFrame) -> pd.Series:
    """An id column with no value (typed, so that a database column stays an integer one)."""
    return pd.Series(pd.NA, index=frame.index, dtype="Int64")


def _unattributed(customers: pd.DataFrame, orders: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Copies without what a billing or shop connector never records: a customer's campaign and
    referrer, an order's campaign and rep."""
    customers, orders = customers.copy(), orders.copy()
    for column in ("campaign_id", "referred_by_customer_id"):
        customers[column] = _no_ids(customers)
    for column in ("campaign_id", "sales_rep_id"):
        orders[column] = _no_ids(orders)
    return customers, orders


def billed_through_stripe(crm: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The demo business as a company billing through Stripe has it, so that its reference layout and
    its Stripe layout are the same business: what Stripe cannot record is not in it (an order's
    campaign and rep, a customer's campaign and referrer, a renewal's predecessor; his segment and
    channel stay, the reference schema requires them, and the adapter leaves those breakdowns out),
    cancelled orders never charged, and a customer churns when his last subscription ends (Stripe's
    definition, the adapter's approximation)."""
    subs = crm["subscriptions"].copy()
    horizon = max(crm["orders"]["ordered_at"].max(), subs["started_at"].max()) + pd.Timedelta(seconds=1)
    ended = _stripe_ended(subs, horizon)
    per_customer = pd.DataFrame({"customer_id": subs["customer_id"], "ended": ended}).groupby("customer_id")["ended"]
    all_ended = per_customer.count() == per_customer.size()
    churned = per_customer.max().where(all_ended)
    # segment and channel stay: breakdowns Stripe leaves out
    customers, orders = _unattributed(crm["customers"], crm["orders"][crm["orders"]["status"] != "cancelled"])
    customers["churned_at"] = customers["customer_id"].map(churned)
    subs["renewed_from_subscription_id"] = _no_ids(subs)
    subs["cancelled_at"] = ended
    subs["term_ends_at"] = ended.fillna(subs["term_ends_at"])
    return {**crm, "customers": customers, "orders": orders, "subscriptions": subs}


def fivetran_stripe(crm: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The business's billing as Fivetran's Stripe tables (write `billed_through_stripe` of it): a
    customer each, a charge per order (its amount in cents, settled in a balance transaction), and
    a subscription per term priced by a monthly plan of its own, in subscription_history (the
    current connector's table, history mode)."""
    customers, orders, subs = crm["customers"], crm["orders"], crm["subscriptions"]
    customer = pd.DataFrame({"id": _stripe_id("cus", customers["customer_id"]), "created": customers["created_at"],
                             "email": customers["customer_id"].map(lambda i: f"billing{i}@example.com"),
                             "address_country": customers["country"], "is_deleted": False, "livemode": True})
    cents = (orders["total_amount"] * 100).round().astype("int64")
    refunded = orders["status"] == "refunded"
    charge = pd.DataFrame({
        "id": _stripe_id("ch", orders["order_id"]), "amount": cents, "amount_refunded": cents.where(refunded, 0),
        "created": orders["ordered_at"], "currency": "usd", "customer_id": _stripe_id("cus", orders["customer_id"]),
        "status": "succeeded", "refunded": refunded, "captured": True, "livemode": True,
        "balance_transaction_id": _stripe_id("txn", orders["order_id"])})
    balance_transaction = pd.DataFrame({"id": charge["balance_transaction_id"], "amount": cents, "currency": "usd",
                                        "type": "charge"})
    history = pd.DataFrame({
        "id": _stripe_id("sub", subs["subscription_id"]), "customer_id": _stripe_id("cus", subs["customer_id"]),
        "start_date": subs["started_at"], "current_period_end": subs["term_ends_at"],
        "ended_at": subs["cancelled_at"], "livemode": True, "_fivetran_active": True})
    plan = pd.DataFrame({"id": _stripe_id("plan", subs["subscription_id"]),
                         "amount": (subs["mrr"] * 100).round().astype("int64"), "currency": "usd",
                         "interval": "month", "interval_count": 1, "product_id": _stripe_id("prod", subs["product_id"])})
    item = pd.DataFrame({"id": _stripe_id("si", subs["subscription_id"]), "subscription_id": history["id"],
                         "plan_id": plan["id"], "quantity": 1})
    return {"customer": customer, "charge": charge, "balance_transaction": balance_transaction,
            "subscription_history": history, "subscription_item": item, "plan": plan}


def sold_through_shopify(crm: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The demo business as a shop on Shopify has it: no order campaign or rep, no customer campaign,
    referrer or churn (a shop's customer has nothing to end); segment and channel stay (the reference
    schema requires them; the adapter leaves those breakdowns out)."""
    customers, orders = _unattributed(crm["customers"], crm["orders"])
    customers["churned_at"] = pd.NaT
    return {**crm, "customers": customers, "orders": orders}


#: every tenth completed order was partly refunded: priced this much higher, given back as a refunded
#: line (subtotal and tax) and refunded shipping (an adjustment, negative as Shopify records it)
SHOPIFY_REFUND = {"subtotal": 8.00, "tax": 2.50, "shipping": -1.50}


def fivetran_shopify(crm: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The business's orders and customers as Fivetran's Shopify tables (write `sold_through_shopify`
    of it): a cancelled order has `cancelled_at`, a refunded one financial_status `refunded`; every
    tenth completed order is priced higher and partly refunded back to its amount, so that the
    adapter must take refunds off to find it."""
    customers, orders = crm["customers"], crm["orders"].reset_index(drop=True)
    customer = pd.DataFrame({"id": customers["customer_id"], "created_at": customers["created_at"],
                             "email": customers["customer_id"].map(lambda i: f"shopper{i}@example.com"),
                             "_fivetran_deleted": False})
    completed = orders["status"] == "completed"
    partly = completed & (np.arange(len(orders)) % 10 == 0)
    given_back = SHOPIFY_REFUND["subtotal"] + SHOPIFY_REFUND["tax"] - SHOPIFY_REFUND["shipping"]
    order = pd.DataFrame({
        "id": orders["order_id"], "customer_id": orders["customer_id"], "created_at": orders["ordered_at"],
        "total_price": (orders["total_amount"] + np.where(partly, given_back, 0.0)).round(2),
        "currency": "USD", "financial_status": np.where(orders["status"] == "refunded", "refunded",
                                                        np.where(partly, "partially_refunded", "paid")),
        "cancelled_at": orders["ordered_at"].where(orders["status"] == "cancelled") + pd.Timedelta(hours=1),
        "test": False, "_fivetran_deleted": False})
    refunded = orders.loc[partly, ["order_id", "ordered_at"]]
    refund = pd.DataFrame({"id": refunded["order_id"].to_numpy(), "order_id": refunded["order_id"].to_numpy(),
                           "created_at": (refunded["ordered_at"] + pd.Timedelta(days=2)).to_numpy()})
    line_refund = pd.DataFrame({"id": refund["id"], "refund_id": refund["id"], "quantity": 1,
                                "subtotal": SHOPIFY_REFUND["subtotal"], "total_tax": SHOPIFY_REFUND["tax"]})
    adjustment = pd.DataFrame({"id": refund["id"], "order_id": refund["order_id"], "refund_id": refund["id"],
                               "amount": SHOPIFY_REFUND["shipping"], "tax_amount": 0.0, "kind": "shipping_refund"})
    return {"customer": customer, "order": order, "refund": refund, "order_line_refund": line_refund,
            "order_adjustment": adjustment}


#: the spend channels an ad network's connector records (mappings of its adapter, inverted)
AD_CHANNELS = {"fivetran_google_ads": ("paid_search",), "fivetran_facebook_ads": ("social",)}


def spent_on_ads(crm: dict[str, pd.DataFrame], adapters: tuple[str, ...]) -> dict[str, pd.DataFrame]:
    """The demo business with only the spend these ad networks record (a company's email, events or
    content costs are in no ad connector): the same business in both layouts."""
    channels = {c for a in adapters for c in AD_CHANNELS.get(a, ())}
    spend = crm["marketing_spend"]
    return {**crm, "marketing_spend": spend[spend["channel"].isin(channels)].reset_index(drop=True)}


def fivetran_google_ads(crm: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Paid search spend as Fivetran's Google Ads tables: each day's cost split between a Search and a
    Shopping campaign (in micros, as Google reports it); campaign_history keeps two versions of one."""
    spend = crm["marketing_spend"]
    spend = spend[spend["channel"] == "paid_search"]
    micros = (spend["amount"] * 1_000_000).round().astype("int64").to_numpy()
    search = micros * 3 // 5
    stats = pd.concat([pd.DataFrame({"id": 101, "date": spend["spend_date"].to_numpy(), "cost_micros": search}),
                       pd.DataFrame({"id": 102, "date": spend["spend_date"].to_numpy(), "cost_micros": micros - search})],
                      ignore_index=True)
    stats["device"] = "DESKTOP"
    stats["_fivetran_synced"] = pd.Timestamp("2030-01-01")
    history = pd.DataFrame({"id": [101, 101, 102], "updated_at": pd.to_datetime(["2019-01-01", "2020-01-01", "2019-01-01"]),
                            "advertising_channel_type": ["SEARCH", "SEARCH", "SHOPPING"],
                            "name": ["Brand search", "Brand search", "Catalogue"]})
    return {"campaign_stats": stats, "campaign_history": history}


def fivetran_facebook_ads(crm: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Social spend as Fivetran's Facebook Ads basic_ad: each day's spend split between two ads."""
    spend = crm["marketing_spend"]
    spend = spend[spend["channel"] == "social"]
    cents = (spend["amount"] * 100).round().astype("int64").to_numpy()
    first = cents // 2
    ads = pd.concat([pd.DataFrame({"ad_id": 201, "date": spend["spend_date"].to_numpy(), "spend": first / 100}),
                     pd.DataFrame({"ad_id": 202, "date": spend["spend_date"].to_numpy(), "spend": (cents - first) / 100})],
                    ignore_index=True)
    ads["account_id"] = 9001
    ads["_fivetran_synced"] = pd.Timestamp("2030-01-01")
    return {"basic_ad": ads}


#: what each layout's connector can record of the demo business (the business both layouts hold)
AS_RECORDED: dict[str, Callable[[dict[str, pd.DataFrame]], dict[str, pd.DataFrame]]] = {
    "fivetran_stripe": billed_through_stripe,
    "fivetran_shopify": sold_through_shopify,
    "fivetran_google_ads": lambda crm: spent_on_ads(crm, ("fivetran_google_ads",)),
    "fivetran_facebook_ads": lambda crm: spent_on_ads(crm, ("fivetran_facebook_ads",)),
}


#: layout name -> (the reference database it replaces, the writer)
LAYOUTS: dict[str, tuple[str, Callable[[dict[str, pd.DataFrame]], dict[str, pd.DataFrame]]]] = {
    "fivetran_zendesk": ("helpdesk", fivetran_zendesk),
    "fivetran_salesforce": ("crm", fivetran_salesforce),
    "fivetran_hubspot": ("crm", fivetran_hubspot),
    "fivetran_stripe": ("crm", fivetran_stripe),
    "fivetran_shopify": ("crm", fivetran_shopify),
    "fivetran_google_ads": ("crm", fivetran_google_ads),
    "fivetran_facebook_ads": ("crm", fivetran_facebook_ads),
}
#: a company's synced stack, as the demo writes it into one database (`--stack`), one schema per
#: connector: each source connection's `adapters` extra (crm_kpis.sources.stack). HubSpot holds the
#: leads, deals and reps; Stripe the billing (its customers are the stack's: HubSpot's companies match
#: them through a custom property); Google Ads and Facebook Ads the spend; Zendesk the helpdesk, and
#: the CRM's CSAT answers from its satisfaction ratings (its organizations match Stripe's customers).
FIVETRAN_STACK: dict[str, list[dict]] = {
    "crm": [{"adapter": "fivetran_hubspot", "schema": "hubspot",
             "customer_ids": {"table": "company", "column": "property_stripe_customer_id"}},
            {"adapter": "fivetran_stripe", "schema": "stripe", "tables": ["orders", "customers", "subscriptions"]},
            {"adapter": "fivetran_google_ads", "schema": "google_ads"},
            {"adapter": "fivetran_facebook_ads", "schema": "facebook_ads"},
            {"adapter": "fivetran_zendesk_satisfaction", "schema": "zendesk",
             "customer_ids": {"table": "organization", "column": "external_id"}}],
    "helpdesk": [{"adapter": "fivetran_zendesk", "schema": "zendesk"}],
}


def as_recorded_by(data: dict[str, dict[str, pd.DataFrame]], adapters: Iterable[str]) -> dict[str, dict[str, pd.DataFrame]]:
    """The demo business as these connectors together can record it (the business a stack's
    reference layout must hold to be the same one): only the spend the ad networks record, billing
    as Stripe keeps it."""
    names = tuple(adapters)
    crm = spent_on_ads(data["crm"], names) if any(a in AD_CHANNELS for a in names) else data["crm"]
    if "fivetran_stripe" in names:
        crm = billed_through_stripe(crm)
    if "fivetran_zendesk_satisfaction" in names:  # Zendesk asks for CSAT, on a ticket, and nothing else
        surveys = crm["survey_responses"]
        crm = {**crm, "survey_responses": surveys[(surveys["survey"] == "csat") & surveys["ticket_id"].notna()]}
    return {**data, "crm": crm}


def write_stack(engine: Engine, data: dict[str, dict[str, pd.DataFrame]],
                stack: dict[str, list[dict]] = FIVETRAN_STACK) -> dict[str, int]:
    """The business (already `as_recorded_by` the stack) in one database, each connector's synced
    tables in its schema. Returns the rows written per schema."""
    counts = {}
    for database, parts in stack.items():
        for part in parts:
            writer = STACK_WRITERS[part["adapter"]]
            counts[part["schema"]] = sum(load_layout(engine, writer(data[database]), part["schema"]).values())
    return counts


#: the writer of each connector's part of a stack (a part may write beside another in one schema:
#: Zendesk's satisfaction ratings beside its tickets)
STACK_WRITERS = {**{name: writer for name, (_, writer) in LAYOUTS.items()},
                 "fivetran_zendesk_satisfaction": zendesk_satisfaction}


#: the keys Fivetran gives the synced tables (its primary keys; nothing else is indexed)
KEYS = {"ticket": ("id",), "ticket_comment": ("id",), "user": ("id",), "group": ("id",), "group_member": ("id",),
        "ticket_field_history": ("ticket_id", "updated"),
        "sla_policy_metric_history": ("index", "sla_policy_id", "sla_policy_updated_at"),
        **{t: ("id",) for t in ("account", "opportunity", "opportunity_history", "lead", "task", "event", "campaign",
                                "user_role", "company", "contact", "engagement")},
        "email_event": ("id",), "organization": ("id",), "satisfaction_rating": ("id",), "customer": ("id",), "order": ("id",), "refund": ("id",),
        "order_line_refund": ("id",), "order_adjustment": ("id",), "charge": ("id",), "balance_transaction": ("id",),
        "subscription_history": ("id",), "subscription_item": ("id",), "plan": ("id",),
        "campaign_stats": ("id", "date"), "basic_ad": ("ad_id", "date"), "owner": ("owner_id",), "owner_team": ("owner_id", "team_id"), "team": ("id",), "deal": ("deal_id",), "deal_stage": ("deal_id", "date_entered"),
        "deal_company": ("deal_id",), "engagement_contact": ("engagement_id",), "engagement_deal": ("engagement_id",),
        **{f"engagement_{kind}": ("engagement_id",) for kind in ("call", "email", "meeting")}}
#: money a connector syncs as a decimal (Shopify's prices and refunds), written as one: a price less
#: its refunds is then the same amount to the last digit on a server, as in the reference tables
MONEY = {"order": ("total_price",), "order_line_refund": ("subtotal", "total_tax"),
         "order_adjustment": ("amount", "tax_amount")}
#: text ids are written as VARCHAR, as a destination types Salesforce's 18-character ids (TEXT cannot
#: be indexed on MariaDB, and a join on it cannot use a key either)
ID_LENGTH = 64


def load_layout(engine: Engine, frames: dict[str, pd.DataFrame], schema: str | None = None) -> dict[str, int]:
    """Replace the synced tables in `engine` (in `schema`, created if needed) with `frames`."""
    dialect = engine.dialect.name
    if schema:
        with engine.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {engine.dialect.identifier_preparer.quote(schema)}"))
    counts = {}
    with engine.begin() as conn:
        for name, frame in frames.items():
            data = _for_sqlite(frame) if dialect == "sqlite" else frame
            text_ids = {c: String(ID_LENGTH) for c in frame.columns
                        if (c == "id" or c.endswith("_id")) and frame[c].dtype == object}
            money = {c: Numeric(18, 2) for c in MONEY.get(name, ())}
            data.to_sql(name, conn, schema=schema, if_exists="replace", index=False, chunksize=50_000,
                        dtype={**text_ids, **money})
            counts[name] = len(frame)
            if name in KEYS:
                quote = engine.dialect.identifier_preparer.quote_identifier
                table = (f"{quote(schema)}." if schema else "") + quote(name)
                conn.execute(text(f"CREATE INDEX {quote('pk_' + name)} ON {table} "
                                  f"({', '.join(quote(c) for c in KEYS[name])})"))
    return counts
