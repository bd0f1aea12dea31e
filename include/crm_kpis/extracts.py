"""The extracts the KPIs read: which SQL file, from which connection, with which row checks.

Why a registry: each area task loads only the extracts its KPIs declare, each once, and every
extract passes the same checks whichever KPI reads it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from crm_kpis.contract import ContractError, columns_read, load_contract, main_table, schema_problems
from crm_kpis.periods import ReportPeriod
from crm_kpis.quality import Rule, apply_rules, before, duplicate, negative
from crm_kpis.sources import CRM_CONN_ID, HELPDESK_CONN_ID, engine_for, read_extract, source_settings
from crm_kpis.typed_read import marked_rules, without_marks

log = logging.getLogger(__name__)


def _score_out_of_scale(frame: pd.DataFrame) -> pd.Series:
    """NPS 0–10, CSAT 1–5, CES 1–7; an unknown survey kind is out of scale too."""
    low = frame["survey"].map({"nps": 0, "csat": 1, "ces": 1})
    high = frame["survey"].map({"nps": 10, "csat": 5, "ces": 7})
    return (low.isna() | frame["score"].isna() | (frame["score"] < low) | (frame["score"] > high)).astype(bool)


ORPHAN_CUSTOMER = Rule("orphan_customer", lambda f: f["known_customer_id"].isna())
#: every extract of orders rows (all of a period, its campaign orders, the period before) checks the same
ORDER_RULES = (duplicate("order_id"), negative("total_amount"), ORPHAN_CUSTOMER)


@dataclass(frozen=True)
class Extract:
    name: str
    conn_id: str
    sql: str
    rules: tuple[Rule, ...] = ()
    shift: int = 0  # read the period this many periods earlier (e.g. -1 for growth rates)
    #: (rule, column, table) for an extract that aggregates in SQL: the rows of that source table
    #: the query itself left out under that rule, counted per output row in that column (e.g. order
    #: lines of an unknown product behind a per-buyer row). They are added to the rule's count.
    counted_in_sql: tuple[tuple[str, str, str], ...] = ()
    #: magnitude columns in which one row far beyond the period's median stops the run (gate.py)
    outliers: tuple[str, ...] = ()
    #: the reference table its rows stand for, where the outermost FROM is a CTE of the query
    table: str | None = None


EXTRACTS: dict[str, Extract] = {
    e.name: e
    for e in [
        Extract("marketing_spend", CRM_CONN_ID, "crm/marketing_spend.sql", (negative("amount"),)),
        Extract("web_traffic", CRM_CONN_ID, "crm/web_traffic.sql", (negative("sessions", "page_views"),)),
        Extract(
            "social_activity", CRM_CONN_ID, "crm/social_activity.sql",
            (negative("impressions", "engagements", "mentions"),
             Rule("engagements_above_impressions", lambda f: f["engagements"] > f["impressions"])),
        ),
        Extract("campaigns_active", CRM_CONN_ID, "crm/campaigns_active.sql",
                (duplicate("campaign_id"), before("ended_on", "started_on"))),
        Extract("leads", CRM_CONN_ID, "crm/leads.sql",
                (duplicate("lead_id"), before("first_contacted_at", "created_at"),
                 before("converted_at", "created_at"))),
        Extract("customers", CRM_CONN_ID, "crm/customers.sql",
                (duplicate("customer_id"), before("churned_at", "created_at"))),
        Extract("orders", CRM_CONN_ID, "crm/orders.sql", ORDER_RULES, outliers=("total_amount",)),
        Extract("campaign_orders", CRM_CONN_ID, "crm/campaign_orders.sql", ORDER_RULES),
        Extract("orders_previous", CRM_CONN_ID, "crm/orders.sql", ORDER_RULES, shift=-1),
        Extract("order_customers", CRM_CONN_ID, "crm/order_customers.sql", (duplicate("customer_id"),)),
        Extract("opportunities_closed", CRM_CONN_ID, "crm/opportunities_closed.sql",
                (duplicate("opportunity_id"), before("closed_at", "created_at"),
                 Rule("closed_without_outcome", lambda f: ~f["outcome"].isin(["won", "lost"])))),
        Extract("opportunities_open", CRM_CONN_ID, "crm/opportunities_open.sql",
                (duplicate("opportunity_id"), negative("amount"))),
        Extract("proposals", CRM_CONN_ID, "crm/proposals.sql", (duplicate("opportunity_id"),)),
        Extract("sales_calls", CRM_CONN_ID, "crm/sales_calls.sql", (duplicate("activity_id"),)),
        Extract("email_messages", CRM_CONN_ID, "crm/email_messages.sql",
                (duplicate("message_id"), before("opened_at", "sent_at"), before("clicked_at", "sent_at"))),
        Extract("email_subscribers", CRM_CONN_ID, "crm/email_subscribers.sql",
                (duplicate("subscriber_id"), before("unsubscribed_at", "subscribed_at"))),
        Extract("survey_responses", CRM_CONN_ID, "crm/survey_responses.sql",
                (duplicate("response_id"), Rule("score_out_of_scale", _score_out_of_scale), ORPHAN_CUSTOMER)),
        Extract("subscriptions_active", CRM_CONN_ID, "crm/subscriptions_active.sql",
                (duplicate("subscription_id"), negative("mrr"))),
        Extract("subscriptions_term_end", CRM_CONN_ID, "crm/subscriptions_term_end.sql",
                (duplicate("subscription_id"),)),
        Extract("stage_exits", CRM_CONN_ID, "crm/stage_exits.sql", (before("exited_at", "entered_at"),)),
        Extract("customer_journeys", CRM_CONN_ID, "crm/customer_journeys.sql",
                (duplicate("customer_id"), before("created_at", "lead_created_at"))),
        Extract("buyer_flags", CRM_CONN_ID, "crm/buyer_flags.sql",
                (Rule("buyer_without_line_with_tier_and_category", lambda f: f["lines_judged"] < 1),),
                counted_in_sql=(("order_line_missing_tier_or_category", "lines_excluded", "order_lines"),)),
        Extract("revenue_trailing", CRM_CONN_ID, "crm/revenue_trailing.sql", ORDER_RULES),
        # a row is a customer's whole history: one of an unknown customer is left out and counted as a
        # customer (not as his orders, which the other order extracts count by order_id)
        Extract("purchase_histories", CRM_CONN_ID, "crm/purchase_histories.sql",
                (Rule("purchase_history_of_unknown_customer", lambda f: f["known_customer_id"].isna()),),
                counted_in_sql=(("negative_or_missing_total_amount", "orders_excluded", "orders"),
                                ("unreadable_total_amount", "amounts_unreadable", "orders")),
                table="orders"),
        Extract("customer_lifetimes", CRM_CONN_ID, "crm/customer_lifetimes.sql",
                (duplicate("customer_id"), before("churned_at", "created_at"))),
        Extract("customers_trailing", CRM_CONN_ID, "crm/customers_trailing.sql",
                (duplicate("customer_id"), before("churned_at", "created_at"))),
        Extract("tickets_created", HELPDESK_CONN_ID, "helpdesk/tickets_created.sql",
                (duplicate("ticket_id"), before("resolved_at", "created_at"))),
        Extract("tickets_resolved", HELPDESK_CONN_ID, "helpdesk/tickets_resolved.sql",
                (duplicate("ticket_id"), before("resolved_at", "created_at"),
                 before("first_response_at", "created_at"), before("resolved_at", "first_response_at"))),
        Extract("tickets_first_response", HELPDESK_CONN_ID, "helpdesk/tickets_first_response.sql",
                (duplicate("ticket_id"), before("first_response_at", "created_at"))),
        Extract("tickets_open", HELPDESK_CONN_ID, "helpdesk/tickets_open.sql", (duplicate("ticket_id"),)),
        Extract("calls", HELPDESK_CONN_ID, "helpdesk/calls.sql",
                (duplicate("call_id"), before("answered_at", "queued_at"), before("ended_at", "queued_at"),
                 before("ended_at", "answered_at"))),
        Extract("agent_time", HELPDESK_CONN_ID, "helpdesk/agent_time.sql", (negative("hours_logged", "hourly_cost"),),
                outliers=("hours_logged", "hourly_cost")),
    ]
}


#: Excluded keys kept per (extract, rule) to count a source row once across extracts; past this
#: many, only the count is kept (and the largest count of any extract is taken).
MAX_KEYS_PER_RULE = 10_000


@dataclass
class Loaded:
    frames: dict[str, pd.DataFrame]
    rows_read: dict[str, int]
    rejected: dict[str, dict[str, int]]
    #: per extract, per column that had unreadable values: {"unreadable": n, "values": m, "table": t}
    unreadable: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    #: per source table, per rule: {"keys": {key: rows}} or {"rows": n} (see MAX_KEYS_PER_RULE)
    excluded: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    #: per "table.column" of an extract's `outliers`: the largest value, its row's key, the median
    extremes: dict[str, dict[str, Any]] = field(default_factory=dict)


def extremes_of(frame: pd.DataFrame, table: str, key: str | None, columns: tuple[str, ...]) -> dict[str, Any]:
    out = {}
    for column in columns:
        values = frame[column].dropna()
        if len(values):
            top = values.idxmax()
            out[f"{table}.{column}"] = {"max": float(values.max()), "median": float(values.median()),
                                        "rows": int(len(values)),
                                        "key": str(frame.at[top, key]) if key and key in frame.columns else str(top)}
    return out


def source_table(extract: Extract) -> str:
    """The reference table an extract's rows come from (its SQL's outermost FROM)."""
    return extract.table or main_table(extract.sql) or extract.name


def _count_rows(into: dict[str, dict[str, dict[str, Any]]], table: str, rule: str, n: int) -> None:
    """Record only a count of excluded rows (no keys): the largest count any extract saw wins."""
    slot = into.setdefault(table, {}).setdefault(rule, {})
    known = sum(slot.pop("keys", {}).values())
    slot["rows"] = max(slot.get("rows", 0), known, n)


def _record_excluded(into: dict[str, dict[str, dict[str, Any]]], table: str, key: str | None,
                     raw: pd.DataFrame, masks: dict[str, pd.Series], counts: dict[str, int]) -> None:
    for rule, n in counts.items():
        slot = into.setdefault(table, {}).setdefault(rule, {})
        mask = masks.get(rule)
        if key and key in raw.columns and mask is not None and n <= MAX_KEYS_PER_RULE and "rows" not in slot:
            keys = raw.loc[mask.to_numpy(), key].astype(str).value_counts()
            merged = slot.setdefault("keys", {})
            for k, c in keys.items():
                merged[str(k)] = max(merged.get(str(k), 0), int(c))
        else:
            _count_rows(into, table, rule, n)


def sources_needed(names: set[str]) -> dict[str, dict[str, tuple[str, ...]]]:
    """Per connection, the reference tables and columns the named extracts read."""
    out: dict[str, dict[str, set[str]]] = {}
    for name in names:
        extract = EXTRACTS[name]
        for table, columns in columns_read(extract.sql).items():
            out.setdefault(extract.conn_id, {}).setdefault(table, set()).update(columns)
    return {conn: {t: tuple(sorted(c)) for t, c in tables.items()} for conn, tables in out.items()}


def verify_sources(names: set[str]) -> None:
    """Fail at once, naming table and column, when a source lacks what the extracts read.

    Type mismatches are only logged here: their values are read one by one and the unreadable
    ones excluded and counted (typed_read), so that a mostly unreadable column stops the run at
    the quality gate with its name.
    """
    errors = []
    for conn_id, tables in sorted(sources_needed(names).items()):
        source = source_settings(conn_id)
        if source.adapter != "reference":
            errors.extend(f"{conn_id}: {p}" for p in adapter_problems(engine_for(conn_id), source, tables))
            continue
        for problem in schema_problems(engine_for(conn_id), tables):
            if problem.level == "error":
                errors.append(f"{conn_id}: {problem.line()}")
            else:
                log.warning("source contract, %s: %s", conn_id, problem.line())
    if errors:
        raise ContractError(f"the source contract is not met ({len(errors)} problem(s)); "
                            "run `python -m crm_kpis.sources check` for the whole list:\n" + "\n".join(errors))


def adapter_problems(engine: Any, source: Any, tables: dict[str, tuple[str, ...]] | None = None) -> list[str]:
    """What a synced database lacks for its adapter, in the adapter's own terms ("fivetran_zendesk
    needs ticket_field_history.field_name"), and reference tables the adapter does not fill."""
    from sqlalchemy import inspect

    from crm_kpis.adapters import load_adapter

    adapter = load_adapter(source.adapter)
    out = [f"{adapter.name} does not fill the reference table {t}" for t in (tables or {})
           if t not in adapter.tables and t not in adapter.not_recorded_tables]
    inspector = inspect(engine)
    existing = set(inspector.get_table_names(schema=source.schema)) | set(inspector.get_view_names(schema=source.schema))
    where = f" (schema {source.schema})" if source.schema else ""
    for table, columns in adapter.synced.items():
        if table not in existing:
            out.append(f"{adapter.name} needs the synced table {table}{where}; it is missing")
            continue
        present = {c["name"] for c in inspector.get_columns(table, schema=source.schema)}
        out.extend(f"{adapter.name} needs {table}.{c}{where}; the column is missing" for c in columns if c not in present)
    return out


def load_extracts(names: set[str], period: ReportPeriod) -> Loaded:
    """Run each named extract once for the period, read its values by type, apply its row checks."""
    frames: dict[str, pd.DataFrame] = {}
    rows_read: dict[str, int] = {}
    rejected: dict[str, dict[str, int]] = {}
    unreadable: dict[str, dict[str, dict[str, Any]]] = {}
    excluded_rows: dict[str, dict[str, dict[str, Any]]] = {}
    extremes: dict[str, dict[str, Any]] = {}
    contract = load_contract()
    for name in sorted(names):
        extract = EXTRACTS[name]
        target = period.shift(extract.shift) if extract.shift else period
        source = source_settings(extract.conn_id)
        tz = source.timezone
        raw, reads = read_extract(engine_for(extract.conn_id), extract.sql, target.sql_params(tz), tz, source)
        table = source_table(extract)
        # unreadable values first: a row is counted once, under the first rule it breaks
        typed_rules = tuple(Rule(rule, lambda f, c=marker: f[c]) for rule, marker in marked_rules(raw))
        checked = apply_rules(name, raw, typed_rules + extract.rules)
        excluded = dict(checked.rejected)
        for rule, column, left_out_of in extract.counted_in_sql:
            n = int(pd.to_numeric(raw[column]).fillna(0).sum()) if len(raw) else 0
            if n:
                excluded[rule] = excluded.get(rule, 0) + n
                _count_rows(excluded_rows, left_out_of, rule, n)
                log.warning("%s: the query left out %d source rows (%s)", name, n, rule)
        key = contract.tables[table].key if table in contract.tables else None
        _record_excluded(excluded_rows, table, key, raw, checked.masks, checked.rejected)
        frames[name] = without_marks(checked.frame)
        extremes.update(extremes_of(frames[name], table, key, extract.outliers))
        rows_read[name] = len(raw)
        if excluded:
            rejected[name] = excluded
        if reads:
            unreadable[name] = {c: {"unreadable": r.unreadable, "values": r.values, "table": table}
                                for c, r in reads.items()}
        log.info("extract %s: %d rows read, %d excluded", name, len(raw), sum(excluded.values()))
    return Loaded(frames, rows_read, rejected, unreadable, excluded_rows, extremes)
