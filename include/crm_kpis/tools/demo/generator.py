"""Deterministic generator of the reference CRM and helpdesk data (source-schema.md).

Why vectorised numpy rather than a row loop: the same generator must reach company scale
(millions of customers and orders) for the benchmark, and it must be reproducible: one seed
gives the same rows, so tests and demos can rely on exact numbers.

Shape of the data (scale 1): about 200 new customers a month over the chosen months, growing
~30 % over the range, with a yearly seasonal swing, quieter weekends, business-hour peaks,
churn, renewals, orders, opportunities, campaigns, email, web, social, surveys, tickets and calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

DAY = 86_400
HOUR = 3_600

CHANNELS = ["email", "paid_search", "social", "events", "referral", "content"]
CHANNEL_WEIGHTS = np.array([0.15, 0.30, 0.20, 0.10, 0.10, 0.15])
SEGMENTS = ["smb", "mid_market", "enterprise"]
SEGMENT_WEIGHTS = np.array([0.62, 0.28, 0.10])
COUNTRIES = ["US", "GB", "DE", "FR", "NL", "CA", "AU", "ES"]
REP_TEAMS = ["Inside Sales", "Field Sales", "Key Accounts"]
AGENT_TEAMS = ["Tier 1", "Tier 2", "Billing"]
TICKET_CHANNELS = ["email", "chat", "phone", "web", "social"]
TICKET_CHANNEL_WEIGHTS = np.array([0.35, 0.25, 0.2, 0.15, 0.05])
CATEGORIES = ["question", "incident", "request", "complaint"]
CATEGORY_WEIGHTS = np.array([0.40, 0.25, 0.25, 0.10])
PRIORITIES = ["low", "normal", "high", "urgent"]
PRIORITY_WEIGHTS = np.array([0.30, 0.50, 0.15, 0.05])
#: SLA minutes (first response, resolution) and the mean minutes the demo team actually takes.
SLA = {"low": (480, 4320), "normal": (240, 1440), "high": (60, 480), "urgent": (15, 240)}
MEAN_FIRST_RESPONSE_MIN = {"low": 300, "normal": 150, "high": 40, "urgent": 10}
MEAN_RESOLUTION_MIN = {"low": 2400, "normal": 900, "high": 300, "urgent": 150}
PLATFORMS = ["linkedin", "x", "facebook", "instagram"]
STAGES = ["qualification", "proposal", "negotiation"]
#: Hour-of-day weights (UTC) for business events: quiet nights, a morning and afternoon peak.
BUSINESS_HOURS = np.array(
    [1, 1, 1, 1, 1, 2, 4, 8, 14, 16, 15, 13, 11, 13, 15, 14, 12, 9, 6, 4, 3, 2, 1, 1], dtype=float
)


@dataclass(frozen=True)
class DemoSpec:
    start: date  # first day of the first month
    end: date  # first day after the last month
    seed: int = 42
    scale: float = 1.0

    @property
    def days(self) -> int:
        return (self.end - self.start).days


def months_back(end_month: date, months: int) -> date:
    index = end_month.year * 12 + end_month.month - 1 - (months - 1)
    return date(index // 12, index % 12 + 1, 1)


def next_month(day: date) -> date:
    return date(day.year + (day.month == 12), day.month % 12 + 1, 1)


def nint(values: object, dtype: str = "Int64") -> pd.Series:
    """A nullable integer column (NULL where masked later with `.where`)."""
    return pd.Series(np.asarray(values), dtype=dtype)


class _Gen:
    """Holds the random state and the time axis while the tables are built in order."""

    def __init__(self, spec: DemoSpec) -> None:
        self.spec = spec
        self.rng = np.random.default_rng(spec.seed)
        self.t0 = pd.Timestamp(spec.start)
        self.horizon = spec.days * DAY  # seconds; everything happens in [0, horizon)
        days = np.arange(spec.days)
        dates = pd.to_datetime(spec.start) + pd.to_timedelta(days, unit="D")
        doy = dates.dayofyear.to_numpy()
        weekday = dates.weekday.to_numpy()
        season = 1 + 0.15 * np.sin(2 * np.pi * (doy - 80) / 365.25) + 0.1 * (dates.month == 12)
        growth = 1 + 0.3 * days / max(spec.days - 1, 1)
        week = np.where(weekday >= 5, 0.55, 1.0)
        self.day_weight = season * growth * week
        self.dates = dates

    # --- time helpers -------------------------------------------------------------------
    def events_per_day(self, per_day: float, weight: np.ndarray | None = None) -> np.ndarray:
        """Seconds since t0 of Poisson events with the daily mean `per_day` × the day's weight."""
        w = self.day_weight if weight is None else weight
        counts = self.rng.poisson(per_day * w)
        day = np.repeat(np.arange(len(counts)), counts)
        hour = self.rng.choice(24, size=len(day), p=BUSINESS_HOURS / BUSINESS_HOURS.sum())
        second = self.rng.integers(0, HOUR, size=len(day))
        return np.sort(day * DAY + hour * HOUR + second)

    def delay(self, mean_seconds: float | np.ndarray, size: int) -> np.ndarray:
        return np.ceil(self.rng.exponential(mean_seconds, size=size)).astype(np.int64)

    def ts(self, seconds: np.ndarray, valid: np.ndarray | None = None, horizon: bool = True) -> pd.Series:
        """Seconds since t0 as timestamps; NaT where not `valid` or (events) past the horizon."""
        seconds = np.asarray(seconds, dtype=float)
        ok = seconds < self.horizon if horizon else np.ones(len(seconds), bool)
        if valid is not None:
            ok &= valid
        out = self.t0 + pd.to_timedelta(np.where(ok, seconds, np.nan), unit="s")
        return pd.Series(out).dt.floor("s")

    def pick(self, options: list[str], weights: np.ndarray, size: int) -> np.ndarray:
        return self.rng.choice(np.array(options, dtype=object), size=size, p=weights / weights.sum())


def generate(spec: DemoSpec) -> dict[str, dict[str, pd.DataFrame]]:
    """All tables, as {"crm": {table: frame}, "helpdesk": {table: frame}}."""
    g = _Gen(spec)
    rng = g.rng
    s = spec.scale
    crm: dict[str, pd.DataFrame] = {}
    hd: dict[str, pd.DataFrame] = {}

    # --- reference tables ---------------------------------------------------------------
    n_reps = max(6, int(12 * s**0.5))
    crm["sales_reps"] = pd.DataFrame(
        {
            "rep_id": np.arange(1, n_reps + 1),
            "name": [f"Rep {i:03d}" for i in range(1, n_reps + 1)],
            "team": [REP_TEAMS[i % len(REP_TEAMS)] for i in range(n_reps)],
        }
    )
    categories = ["software", "services", "hardware", "training"]
    products = pd.DataFrame({"product_id": np.arange(1, 13)})
    products["category"] = [categories[i % 4] for i in range(12)]
    products["tier"] = [1 + (i // 4) for i in range(12)]
    products["name"] = [f"{c.title()} {['Basic', 'Plus', 'Premium'][t - 1]}" for c, t in
                        zip(products["category"], products["tier"], strict=True)]
    products["list_price"] = np.round(products["tier"] * 120.0 * rng.uniform(0.8, 1.2, 12), 2)
    crm["products"] = products[["product_id", "name", "category", "tier", "list_price"]]

    # campaigns: about four a month, each running two to eight weeks (some open-ended)
    camp_start = g.events_per_day(4 * 12 / 365 * max(1.0, s**0.5), np.ones(spec.days)) // DAY * DAY
    n_camp = len(camp_start)
    camp_len_days = rng.integers(14, 60, n_camp)
    open_ended = rng.random(n_camp) < 0.1
    campaigns = pd.DataFrame(
        {
            "campaign_id": np.arange(1, n_camp + 1),
            "name": [f"Campaign {i:04d}" for i in range(1, n_camp + 1)],
            "channel": g.pick(CHANNELS, CHANNEL_WEIGHTS, n_camp),
            "started_on": g.ts(camp_start).dt.date,
            "ended_on": g.ts(camp_start + camp_len_days * DAY, ~open_ended, horizon=False).dt.date,
            "cost": np.round(rng.gamma(2.0, 2500.0 * s**0.5, n_camp), 2),
        }
    )
    crm["campaigns"] = campaigns

    def campaign_for(seconds: np.ndarray, share: float) -> pd.array:
        """A campaign that had started by then, for `share` of the events; else NULL."""
        started = np.searchsorted(camp_start, seconds, side="right")
        has = (started > 0) & (rng.random(len(seconds)) < share)
        chosen = (rng.random(len(seconds)) * np.maximum(started, 1)).astype(int) + 1
        return nint(np.where(has, chosen, 0), dtype="Int64").where(has)

    # daily channel tables
    day_idx = np.arange(spec.days)
    ch_base_spend = np.array([150, 1300, 700, 500, 90, 260]) * s
    spend = pd.DataFrame(
        {
            "spend_date": np.repeat(g.dates.date, len(CHANNELS)),
            "channel": np.tile(CHANNELS, spec.days),
            "amount": np.round(
                np.repeat(g.day_weight, len(CHANNELS)) * np.tile(ch_base_spend, spec.days)
                * rng.lognormal(0, 0.25, spec.days * len(CHANNELS)),
                2,
            ),
        }
    )
    crm["marketing_spend"] = spend
    sessions = rng.poisson(
        np.repeat(g.day_weight, len(CHANNELS)) * np.tile(np.array([90, 520, 300, 60, 70, 260]) * s, spec.days)
    )
    crm["web_traffic"] = pd.DataFrame(
        {
            "traffic_date": np.repeat(g.dates.date, len(CHANNELS)),
            "channel": np.tile(CHANNELS, spec.days),
            "sessions": sessions,
            "page_views": sessions + rng.poisson(sessions * 1.8),
        }
    )
    impressions = rng.poisson(np.repeat(g.day_weight, len(PLATFORMS)) * 4000 * s)
    engagements = rng.binomial(impressions, 0.035)
    crm["social_activity"] = pd.DataFrame(
        {
            "activity_date": np.repeat(g.dates.date, len(PLATFORMS)),
            "platform": np.tile(PLATFORMS, spec.days),
            "impressions": impressions,
            "engagements": engagements,
            "mentions": rng.poisson(np.repeat(g.day_weight, len(PLATFORMS)) * 6 * s),
        }
    )

    # --- leads and customers --------------------------------------------------------------
    lead_t = g.events_per_day(500 * s * 12 / 365 / g.day_weight.mean())
    n_leads = len(lead_t)
    contacted = rng.random(n_leads) < 0.93
    first_contact = lead_t + g.delay(8 * HOUR, n_leads)
    converts = contacted & (rng.random(n_leads) < 0.26)
    converted_t = first_contact + g.delay(20 * DAY, n_leads)
    converts &= converted_t < g.horizon
    qualified = contacted & ~converts & (rng.random(n_leads) < 0.35)
    disqualified = contacted & ~converts & ~qualified & (rng.random(n_leads) < 0.5)
    status = np.where(
        converts, "converted",
        np.where(qualified, "qualified", np.where(disqualified, "disqualified",
                                                  np.where(contacted, "contacted", "new"))),
    )
    lead_channel = g.pick(CHANNELS, CHANNEL_WEIGHTS, n_leads)
    lead_campaign = campaign_for(lead_t, 0.55)
    n_reps_arr = crm["sales_reps"]["rep_id"].to_numpy()
    lead_owner = nint(rng.choice(n_reps_arr, n_leads), dtype="Int64")
    lead_owner[rng.random(n_leads) < 0.08] = pd.NA
    # leads first contacted after the horizon are not yet contacted
    contacted &= first_contact < g.horizon

    direct_t = g.events_per_day(80 * s * 12 / 365 / g.day_weight.mean())
    conv_idx = np.flatnonzero(converts)
    cust_t = np.concatenate([converted_t[conv_idx], direct_t])
    from_lead = np.concatenate([conv_idx, np.full(len(direct_t), -1)])
    order = np.argsort(cust_t, kind="stable")
    cust_t, from_lead = cust_t[order], from_lead[order]
    n_cust = len(cust_t)
    customer_id = np.arange(1, n_cust + 1)
    segment = g.pick(SEGMENTS, SEGMENT_WEIGHTS, n_cust)
    seg_i = pd.Series(segment).map({k: i for i, k in enumerate(SEGMENTS)}).to_numpy()
    acq_channel = np.where(
        from_lead >= 0, lead_channel[np.maximum(from_lead, 0)], g.pick(CHANNELS, CHANNEL_WEIGHTS, n_cust)
    )
    cust_campaign = nint(
        np.where(from_lead >= 0, lead_campaign[np.maximum(from_lead, 0)].fillna(0).astype(int), 0),
        dtype="Int64",
    )
    direct_campaign = campaign_for(cust_t, 0.2)
    cust_campaign = cust_campaign.where(from_lead >= 0, direct_campaign)
    cust_campaign = cust_campaign.where(cust_campaign != 0)
    referred = (rng.random(n_cust) < 0.11) & (customer_id > 20)
    referrer = nint((rng.random(n_cust) * np.maximum(customer_id - 1, 1)).astype(int) + 1, dtype="Int64")
    referrer = referrer.where(referred)
    # churn: monthly hazard by segment (smb churns most)
    churn_months = rng.exponential(np.array([28.0, 45.0, 70.0])[seg_i])
    churn_t = cust_t + (churn_months * 30.4 * DAY).astype(np.int64)
    crm["customers"] = pd.DataFrame(
        {
            "customer_id": customer_id,
            "created_at": g.ts(cust_t),
            "segment": segment,
            "country": g.pick(COUNTRIES, np.array([0.4, 0.12, 0.12, 0.08, 0.06, 0.1, 0.07, 0.05]), n_cust),
            "acquisition_channel": acq_channel,
            "campaign_id": cust_campaign,
            "referred_by_customer_id": referrer,
            "churned_at": g.ts(churn_t),
        }
    )
    lead_customer = np.zeros(n_leads, dtype=np.int64)
    lead_customer[from_lead[from_lead >= 0]] = customer_id[from_lead >= 0]
    crm["leads"] = pd.DataFrame(
        {
            "lead_id": np.arange(1, n_leads + 1),
            "created_at": g.ts(lead_t),
            "source_channel": lead_channel,
            "campaign_id": lead_campaign,
            "owner_rep_id": lead_owner,
            "first_contacted_at": g.ts(first_contact, contacted),
            "status": np.where(contacted | (status == "new"), status, "new"),
            "converted_at": g.ts(converted_t, converts),
            "customer_id": nint(lead_customer, dtype="Int64").where(converts),
        }
    )
    cust_end = np.minimum(churn_t, g.horizon)  # last moment a customer is active in the data

    # --- subscriptions: a yearly term per customer, renewed unless the customer churns ----
    subs = []
    sub_start, sub_cust = cust_t.copy(), customer_id.copy()
    mrr_base = np.array([90.0, 650.0, 4200.0])[seg_i]
    prev_ids = np.zeros(n_cust, dtype=np.int64)
    next_id = 1
    cust_pos = np.arange(n_cust)
    while len(sub_start):
        term_end = sub_start + 365 * DAY
        ids = np.arange(next_id, next_id + len(sub_start))
        next_id += len(sub_start)
        churn_here = churn_t[cust_pos]
        cancelled = churn_here < term_end
        subs.append(
            pd.DataFrame(
                {
                    "subscription_id": ids,
                    "customer_id": sub_cust,
                    "product_id": rng.integers(1, 13, len(ids)),
                    "started_at": g.ts(sub_start),
                    "term_ends_at": g.ts(term_end, horizon=False),  # a contract date, may be future
                    "cancelled_at": g.ts(churn_here, cancelled),
                    "renewed_from_subscription_id": nint(prev_ids, dtype="Int64").where(prev_ids > 0),
                    "mrr": np.round(mrr_base[cust_pos] * rng.uniform(0.85, 1.25, len(ids)), 2),
                }
            )
        )
        renew = ~cancelled & (term_end < g.horizon) & (rng.random(len(ids)) < 0.88)
        sub_start, sub_cust, cust_pos, prev_ids = term_end[renew], sub_cust[renew], cust_pos[renew], ids[renew]
    crm["subscriptions"] = pd.concat(subs, ignore_index=True)

    # --- orders and lines -----------------------------------------------------------------
    rate_per_day = np.array([0.9, 1.6, 3.0])[seg_i] / 30.4
    active_days = np.maximum(cust_end - cust_t, 0) / DAY
    n_orders = rng.poisson(rate_per_day * active_days) + (cust_t < g.horizon)  # first order at signup
    o_cust_pos = np.repeat(np.arange(n_cust), n_orders)
    first = np.r_[True, o_cust_pos[1:] != o_cust_pos[:-1]]
    o_t = np.where(
        first,
        cust_t[o_cust_pos] + g.delay(2 * HOUR, len(o_cust_pos)),
        cust_t[o_cust_pos] + (rng.random(len(o_cust_pos)) * (cust_end - cust_t)[o_cust_pos]).astype(np.int64),
    )
    keep = o_t < np.minimum(cust_end[o_cust_pos] + 1, g.horizon)
    # seasonality: thin orders on quiet days
    o_day = np.clip(o_t // DAY, 0, spec.days - 1)
    keep &= rng.random(len(o_t)) < g.day_weight[o_day] / g.day_weight.max() + first
    o_t, o_cust_pos = o_t[keep], o_cust_pos[keep]
    order_sort = np.argsort(o_t, kind="stable")
    o_t, o_cust_pos = o_t[order_sort], o_cust_pos[order_sort]
    n_o = len(o_t)
    order_id = np.arange(1, n_o + 1)
    n_lines = rng.integers(1, 5, n_o) + (seg_i[o_cust_pos] == 2)
    line_order = np.repeat(order_id, n_lines)
    line_no = np.arange(len(line_order)) - np.repeat(np.cumsum(n_lines) - n_lines, n_lines) + 1
    # customers lean towards their segment's tier, so up-sells exist but are not the rule
    tier = np.clip(seg_i[o_cust_pos][line_order - 1] + 1 + rng.choice([-1, 0, 0, 0, 1], len(line_order)), 1, 3)
    product_id = (tier - 1) * 4 + rng.integers(1, 5, len(line_order))
    qty = rng.integers(1, 4, len(line_order)) * np.where(seg_i[o_cust_pos][line_order - 1] == 2, 3, 1)
    unit_price = np.round(products["list_price"].to_numpy()[product_id - 1] * rng.uniform(0.85, 1.0, len(line_order)), 2)
    crm["order_lines"] = pd.DataFrame(
        {"order_id": line_order, "line_no": line_no, "product_id": product_id,
         "quantity": qty, "unit_price": unit_price}
    )
    totals = np.round(np.bincount(line_order - 1, weights=qty * unit_price, minlength=n_o), 2)
    o_status = g.pick(["completed", "refunded", "cancelled"], np.array([0.92, 0.04, 0.04]), n_o)
    rep = nint(rng.choice(n_reps_arr, n_o), dtype="Int64").where(rng.random(n_o) < 0.65)
    crm["orders"] = pd.DataFrame(
        {
            "order_id": order_id,
            "customer_id": customer_id[o_cust_pos],
            "ordered_at": g.ts(o_t),
            "status": o_status,
            "total_amount": totals,
            "campaign_id": campaign_for(o_t, 0.04),
            "sales_rep_id": rep,
        }
    )

    # --- opportunities, stage history, sales activities -----------------------------------
    lead_opp = np.flatnonzero(contacted & (converts | qualified | (disqualified & (rng.random(n_leads) < 0.4))))
    n_cust_opp = int(n_cust * 0.35)
    co_pos = rng.integers(0, n_cust, n_cust_opp)
    co_t = cust_t[co_pos] + (rng.random(n_cust_opp) * np.maximum(cust_end - cust_t, DAY)[co_pos]).astype(np.int64)
    opp_t = np.concatenate([first_contact[lead_opp] + g.delay(2 * DAY, len(lead_opp)), co_t])
    n_opp = len(opp_t)
    is_lead_opp = np.arange(n_opp) < len(lead_opp)
    kind = np.where(is_lead_opp, "new_business",
                    g.pick(["upsell", "cross_sell", "renewal"], np.array([0.4, 0.3, 0.3]), n_opp))
    won = np.where(is_lead_opp, np.isin(np.arange(n_opp), np.flatnonzero(converts[lead_opp])),
                   rng.random(n_opp) < 0.48)
    close_t = np.where(
        is_lead_opp & won,
        np.maximum(np.concatenate([converted_t[lead_opp], co_t]), opp_t + HOUR),
        opp_t + g.delay(np.where(won, 25 * DAY, 35 * DAY), n_opp),
    )
    decided = (won | (rng.random(n_opp) < 0.85)) & (close_t < g.horizon)
    proposal = opp_t + ((close_t - opp_t) * rng.uniform(0.3, 0.6, n_opp)).astype(np.int64)
    has_proposal = (won | (rng.random(n_opp) < 0.6)) & (proposal < g.horizon)
    negotiation = proposal + ((close_t - proposal) * rng.uniform(0.3, 0.7, n_opp)).astype(np.int64)
    has_negotiation = has_proposal & (won | (rng.random(n_opp) < 0.5)) & (negotiation < g.horizon)
    # a lead's segment is not known before it converts: draw it like a customer's
    opp_seg = np.concatenate([rng.choice(3, len(lead_opp), p=SEGMENT_WEIGHTS), seg_i[co_pos]])
    amount = np.round(rng.gamma(2.0, np.array([2500.0, 9000.0, 40000.0])[opp_seg] / 2), 2)
    owner = np.concatenate([
        np.where(pd.isna(lead_owner[lead_opp]), rng.choice(n_reps_arr, len(lead_opp)),
                 lead_owner[lead_opp].fillna(1).to_numpy(dtype=np.int64)),
        rng.choice(n_reps_arr, n_cust_opp),
    ])
    open_stage = np.where(has_negotiation, "negotiation", np.where(has_proposal, "proposal", "qualification"))
    stage = np.where(decided, np.where(won, "closed_won", "closed_lost"), open_stage)
    opp_keep = opp_t < g.horizon
    opp_id = np.cumsum(opp_keep)  # ids 1..n for the kept ones
    opps = pd.DataFrame(
        {
            "opportunity_id": opp_id,
            "kind": kind,
            "lead_id": nint(np.concatenate([lead_opp + 1, np.zeros(n_cust_opp, int)]), dtype="Int64").where(is_lead_opp),
            "customer_id": nint(
                np.concatenate([lead_customer[lead_opp], customer_id[co_pos]]), dtype="Int64"
            ).where(~is_lead_opp | (np.concatenate([lead_customer[lead_opp], customer_id[co_pos]]) > 0)),
            "owner_rep_id": owner,
            "created_at": g.ts(opp_t),
            "stage": stage,
            "amount": amount,
            "proposal_sent_at": g.ts(proposal, has_proposal),
            "closed_at": g.ts(close_t, decided),
            "outcome": pd.Series(np.where(won, "won", "lost"), dtype=object).where(decided, None),
        }
    )[opp_keep]
    crm["opportunities"] = opps.reset_index(drop=True)
    hist = [
        pd.DataFrame({"opportunity_id": opp_id, "stage": "qualification", "entered_at": g.ts(opp_t)})[opp_keep],
        pd.DataFrame({"opportunity_id": opp_id, "stage": "proposal", "entered_at": g.ts(proposal, has_proposal)})[opp_keep & has_proposal],
        pd.DataFrame({"opportunity_id": opp_id, "stage": "negotiation", "entered_at": g.ts(negotiation, has_negotiation)})[opp_keep & has_negotiation],
        pd.DataFrame({"opportunity_id": opp_id, "stage": stage, "entered_at": g.ts(close_t, decided)})[opp_keep & decided],
    ]
    crm["opportunity_stage_history"] = pd.concat(hist, ignore_index=True).sort_values(["opportunity_id", "entered_at"], kind="stable").reset_index(drop=True)
    n_act = rng.poisson(4, n_opp) * opp_keep
    a_opp = np.repeat(np.arange(n_opp), n_act)
    a_end = np.where(decided, close_t, g.horizon)[a_opp]
    a_t = opp_t[a_opp] + (rng.random(len(a_opp)) * np.maximum(a_end - opp_t[a_opp], HOUR)).astype(np.int64)
    l_idx = np.flatnonzero(contacted)
    act_t = np.concatenate([a_t, first_contact[l_idx]])
    act_keep = act_t < g.horizon
    act = pd.DataFrame(
        {
            "kind": np.concatenate([g.pick(["call", "email", "meeting"], np.array([0.5, 0.35, 0.15]), len(a_opp)),
                                    g.pick(["call", "email"], np.array([0.6, 0.4]), len(l_idx))]),
            "rep_id": np.concatenate([owner[a_opp], lead_owner[l_idx].fillna(1).to_numpy(dtype=np.int64)]),
            "lead_id": nint(np.concatenate([np.zeros(len(a_opp), int), l_idx + 1]), dtype="Int64"),
            "opportunity_id": nint(np.concatenate([opp_id[a_opp], np.zeros(len(l_idx), int)]), dtype="Int64"),
            "occurred_at": g.ts(act_t),
        }
    )[act_keep].sort_values("occurred_at", kind="stable").reset_index(drop=True)
    act["lead_id"] = act["lead_id"].where(act["lead_id"] > 0)
    act["opportunity_id"] = act["opportunity_id"].where(act["opportunity_id"] > 0)
    act.insert(0, "activity_id", np.arange(1, len(act) + 1))
    crm["sales_activities"] = act

    # --- email marketing -------------------------------------------------------------------
    base_subs = int(1500 * s)
    sub_t = np.concatenate([-rng.integers(DAY, 400 * DAY, base_subs), g.events_per_day(260 * s * 12 / 365)])
    sub_t.sort()
    n_sub = len(sub_t)
    unsub_t = sub_t + g.delay(900 * DAY, n_sub)
    crm["email_subscribers"] = pd.DataFrame(
        {
            "subscriber_id": np.arange(1, n_sub + 1),
            "email": [f"subscriber{i}@example.net" for i in range(1, n_sub + 1)],
            "subscribed_at": g.ts(sub_t),
            "unsubscribed_at": g.ts(unsub_t),
        }
    )
    sends = []
    email_campaigns = campaigns.loc[campaigns["channel"] == "email", "campaign_id"].to_numpy()
    for day in np.flatnonzero(np.isin(g.dates.day, [6, 20])):
        t = day * DAY + 9 * HOUR
        live = np.flatnonzero((sub_t < t) & (unsub_t > t))
        chosen = live[rng.random(len(live)) < 0.45]
        sends.append((np.full(len(chosen), t), chosen))
    if sends:
        m_t = np.concatenate([x[0] for x in sends]) + rng.integers(0, 2 * HOUR, sum(len(x[0]) for x in sends))
        m_sub = np.concatenate([x[1] for x in sends])
    else:
        m_t, m_sub = np.zeros(0, np.int64), np.zeros(0, np.int64)
    n_m = len(m_t)
    delivered = rng.random(n_m) < 0.97
    opened = delivered & (rng.random(n_m) < 0.24)
    clicked = opened & (rng.random(n_m) < 0.16)
    open_t = m_t + g.delay(5 * HOUR, n_m)
    click_t = open_t + g.delay(120, n_m)
    camp_of_send = (
        nint(rng.choice(email_campaigns, n_m), dtype="Int64") if len(email_campaigns) else nint([pd.NA] * n_m, dtype="Int64")
    )
    crm["email_messages"] = pd.DataFrame(
        {
            "message_id": np.arange(1, n_m + 1),
            "campaign_id": camp_of_send,
            "subscriber_id": m_sub + 1,
            "kind": "marketing",
            "sent_at": g.ts(m_t),
            "delivered": delivered.astype(int),
            "opened_at": g.ts(open_t, opened),
            "clicked_at": g.ts(click_t, clicked),
        }
    )

    # --- helpdesk: agents, time, SLA policies -----------------------------------------------
    n_agents = max(6, int(18 * s**0.5))
    hd["agents"] = pd.DataFrame(
        {
            "agent_id": np.arange(1, n_agents + 1),
            "name": [f"Agent {i:03d}" for i in range(1, n_agents + 1)],
            "team": [AGENT_TEAMS[i % 3] for i in range(n_agents)],
            "hourly_cost": np.round(rng.uniform(24, 46, n_agents), 2),
        }
    )
    workdays = day_idx[g.dates.weekday < 5]
    at = pd.DataFrame(
        {
            "agent_id": np.tile(np.arange(1, n_agents + 1), len(workdays)),
            "work_date": np.repeat(g.dates.date[workdays], n_agents),
            "hours_logged": np.round(rng.normal(7.4, 0.8, len(workdays) * n_agents).clip(2, 10) * 4) / 4,
        }
    )
    hd["agent_time"] = at[rng.random(len(at)) > 0.06].reset_index(drop=True)  # leave, sick days
    hd["sla_policies"] = pd.DataFrame(
        {"priority": PRIORITIES, "first_response_minutes": [SLA[p][0] for p in PRIORITIES],
         "resolution_minutes": [SLA[p][1] for p in PRIORITIES]}
    )

    # --- tickets and messages ---------------------------------------------------------------
    t_t = g.events_per_day(620 * s * 12 / 365 / g.day_weight.mean())
    n_t = len(t_t)
    prio = g.pick(PRIORITIES, PRIORITY_WEIGHTS, n_t)
    fr_mean = pd.Series(prio).map(MEAN_FIRST_RESPONSE_MIN).to_numpy() * 60.0
    res_mean = pd.Series(prio).map(MEAN_RESOLUTION_MIN).to_numpy() * 60.0
    fr_t = t_t + g.delay(fr_mean, n_t)
    res_t = fr_t + g.delay(res_mean, n_t)
    responded = fr_t < g.horizon
    resolved = res_t < g.horizon
    reopen = rng.choice([0, 1, 2], n_t, p=[0.91, 0.07, 0.02])
    closed_t = res_t + 3 * DAY
    known = np.searchsorted(cust_t, t_t)  # customers who existed when the ticket came in
    t_cust = nint((rng.random(n_t) * np.maximum(known, 1)).astype(int) + 1, dtype="Int64").where(
        (known > 0) & (rng.random(n_t) < 0.9)
    )
    status_t = np.where(closed_t < g.horizon, "closed", np.where(resolved, "solved",
                        np.where(responded, "pending", "open")))
    assignee = nint(rng.integers(1, n_agents + 1, n_t), dtype="Int64").where((rng.random(n_t) < 0.96) | responded)
    hd["tickets"] = pd.DataFrame(
        {
            "ticket_id": np.arange(1, n_t + 1),
            "customer_id": t_cust,
            "channel": g.pick(TICKET_CHANNELS, TICKET_CHANNEL_WEIGHTS, n_t),
            "category": g.pick(CATEGORIES, CATEGORY_WEIGHTS, n_t),
            "priority": prio,
            "status": status_t,
            "assignee_agent_id": assignee,
            "created_at": g.ts(t_t),
            "first_response_at": g.ts(fr_t, responded),
            "resolved_at": g.ts(res_t, resolved),
            "closed_at": g.ts(closed_t, resolved),
            "reopen_count": np.where(resolved, reopen, 0),
        }
    )
    extra = rng.poisson(0.9, n_t) * responded
    m_ticket = np.concatenate([np.arange(n_t), np.flatnonzero(responded), np.repeat(np.arange(n_t), extra)])
    m_time = np.concatenate([
        t_t, fr_t[responded],
        fr_t[np.repeat(np.arange(n_t), extra)] + (rng.random(extra.sum()) * (np.where(resolved, res_t, g.horizon) - fr_t)[np.repeat(np.arange(n_t), extra)]).astype(np.int64),
    ])
    m_author = np.concatenate([np.full(n_t, "customer"), np.full(responded.sum(), "agent"),
                               g.pick(["agent", "customer"], np.array([0.5, 0.5]), int(extra.sum()))])
    m_public = np.concatenate([np.ones(n_t + responded.sum(), int), (rng.random(extra.sum()) < 0.8).astype(int)])
    msgs = pd.DataFrame(
        {
            "ticket_id": m_ticket + 1,
            "author": m_author,
            "agent_id": nint(assignee[m_ticket].fillna(1).to_numpy(dtype=np.int64), dtype="Int64").where(pd.Series(m_author == "agent")),
            "created_at": g.ts(m_time),
            "public": m_public,
        }
    )[m_time < g.horizon].sort_values(["created_at", "ticket_id"], kind="stable").reset_index(drop=True)
    msgs.insert(0, "message_id", np.arange(1, len(msgs) + 1))
    hd["ticket_messages"] = msgs

    # --- calls ----------------------------------------------------------------------------
    c_t = g.events_per_day(45 * s)
    n_c = len(c_t)
    inbound = rng.random(n_c) < 0.82
    outcome = np.where(inbound, g.pick(["answered", "abandoned", "voicemail"], np.array([0.85, 0.10, 0.05]), n_c),
                       g.pick(["answered", "voicemail"], np.array([0.7, 0.3]), n_c))
    answered = outcome == "answered"
    ans_t = c_t + g.delay(38, n_c)
    end_t = np.where(answered, ans_t + g.delay(6.5 * 60, n_c), c_t + g.delay(70, n_c))
    c_keep = end_t < g.horizon
    hd["calls"] = pd.DataFrame(
        {
            "call_id": np.cumsum(c_keep),
            "direction": np.where(inbound, "inbound", "outbound"),
            "customer_id": nint((rng.random(n_c) * np.maximum(np.searchsorted(cust_t, c_t), 1)).astype(int) + 1, dtype="Int64").where(
                (rng.random(n_c) < 0.8) & (np.searchsorted(cust_t, c_t) > 0)),
            "ticket_id": nint(rng.integers(1, max(n_t, 1) + 1, n_c), dtype="Int64").where(rng.random(n_c) < 0.3),
            "agent_id": nint(rng.integers(1, n_agents + 1, n_c), dtype="Int64").where(answered),
            "queued_at": g.ts(c_t),
            "answered_at": g.ts(ans_t, answered),
            "ended_at": g.ts(end_t),
            "is_callback": (rng.random(n_c) < 0.06).astype(int),
            "outcome": outcome,
        }
    )[c_keep].reset_index(drop=True)

    # --- surveys (CRM): NPS from active customers, CSAT and CES after resolved tickets ---
    months = pd.date_range(spec.start, spec.end, freq="MS", inclusive="left")
    nps_parts = []
    for m_start in months:
        ms = int((m_start - g.t0).total_seconds())
        active = np.flatnonzero((cust_t < ms) & (churn_t >= ms))
        chosen = active[rng.random(len(active)) < 0.06]
        nps_parts.append((chosen, ms + (rng.random(len(chosen)) * 28 * DAY).astype(np.int64)))
    nps_c = np.concatenate([p[0] for p in nps_parts]) if nps_parts else np.zeros(0, int)
    nps_t = np.concatenate([p[1] for p in nps_parts]) if nps_parts else np.zeros(0, int)
    nps_score = rng.choice(np.arange(11), len(nps_c),
                           p=np.array([1, 1, 1, 1, 2, 3, 4, 8, 14, 30, 35]) / 100.0)
    solved_idx = np.flatnonzero(resolved & (rng.random(n_t) < 0.35) & t_cust.notna().to_numpy())
    ces_idx = np.flatnonzero(resolved & (rng.random(n_t) < 0.12) & t_cust.notna().to_numpy())
    csat_score = rng.choice([1, 2, 3, 4, 5], len(solved_idx), p=[0.05, 0.06, 0.11, 0.33, 0.45])
    ces_score = rng.choice(np.arange(1, 8), len(ces_idx), p=[0.28, 0.27, 0.18, 0.12, 0.08, 0.04, 0.03])
    survey_t = np.concatenate([nps_t, res_t[solved_idx] + g.delay(DAY, len(solved_idx)),
                               res_t[ces_idx] + g.delay(DAY, len(ces_idx))])
    surveys = pd.DataFrame(
        {
            "customer_id": np.concatenate([customer_id[nps_c], t_cust[solved_idx].to_numpy(dtype=np.int64),
                                           t_cust[ces_idx].to_numpy(dtype=np.int64)]),
            "survey": np.concatenate([np.full(len(nps_c), "nps"), np.full(len(solved_idx), "csat"),
                                      np.full(len(ces_idx), "ces")]),
            "score": np.concatenate([nps_score, csat_score, ces_score]),
            "responded_at": g.ts(survey_t),
            "ticket_id": nint(np.concatenate([np.zeros(len(nps_c), int), solved_idx + 1, ces_idx + 1]), dtype="Int64"),
            "comment": None,
        }
    )
    surveys["ticket_id"] = surveys["ticket_id"].where(surveys["ticket_id"] > 0)
    surveys = surveys[survey_t < g.horizon].sort_values("responded_at", kind="stable").reset_index(drop=True)
    surveys.insert(0, "response_id", np.arange(1, len(surveys) + 1))
    crm["survey_responses"] = surveys
    return {"crm": crm, "helpdesk": hd}


def default_end_month(today: date) -> date:
    """The last complete month before `today`."""
    first = date(today.year, today.month, 1)
    return months_back(first, 2)


def spec_for(end_month: date, months: int = 24, seed: int = 42, scale: float = 1.0) -> DemoSpec:
    return DemoSpec(start=months_back(end_month, months), end=next_month(end_month), seed=seed, scale=scale)


