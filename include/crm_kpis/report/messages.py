"""The report as a chat message: the headline KPIs and "What changed" for Slack and Microsoft Teams.

Why a summary file: the render task knows the numbers (it built the report's context); the send
task, perhaps on another worker and later, posts them. The summary is plain data written beside
the PDF (`<period>.message.json`); the two payloads are declared from it here, one function each,
so that both channels say the same thing: the edition's title and period, up to five movers, the
headline KPIs with value, change and status, the data caveats, and a link to the PDF that opens
without an Airflow account (crm_kpis.delivery.shared_links), or, where no link secret is set, the
one behind the Airflow login (the KPI history view's `/kpi-history/report.pdf`).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

STATUS_MARKS = {"on_target": "on target", "at_risk": "at risk", "off_target": "off target"}
#: what a magnitude far from its history is called wherever the report is read (email, chat, PDF)
CHECK_SAYS = "Check before use: far from their history, these may be a data error:"


def check_prefix(checks: list[str], n: int = 2) -> str:
    """A title's warning: "CHECK: Revenue 9.8× its usual; … (+3 more)" (the subject, the chat post)."""
    more = f" (+{len(checks) - n} more)" if len(checks) > n else ""
    return "CHECK: " + "; ".join(checks[:n]) + more


def summary(context: dict[str, Any]) -> dict[str, Any]:
    """What a chat message shows, from the report's context (plain data, JSON-ready)."""
    period, report = context["period"], context["report"]
    caveats = []
    if context["rejected_total"]:
        caveats.append(f"{context['rejected_total']:,} source rows were excluded by data checks")
    if context["not_tracked"]:
        caveats.append(f"{len(context['not_tracked'])} KPIs are n/a: the sources do not record their input")
    if context["run"].get("warnings"):
        caveats.append("data warnings: " + "; ".join(context["run"]["warnings"]))
    incomplete = context.get("incomplete") or []
    checks = context.get("checks") or []
    return {
        # a source that could not be read, or a magnitude far from its history, is said in the
        # title, where the reader looks first
        "title": (f"INCOMPLETE ({len(incomplete)} source(s) unreadable) · " if incomplete else "")
        + (f"{check_prefix(checks)} · " if checks else "")
        + f"{context['title']} · {period.label}",
        "checks": checks,
        "company": context["company"],
        "span": f"{period.span} ({period.tz})",
        "compared_with": context["previous_period"].label,
        "movers": [m.sentence for m in context["movers"]],
        "kpis": [{"name": k.name, "value": k.value_text, "change": k.headline_change, "yoy": k.headline_yoy,
                  "status": STATUS_MARKS.get(k.status or "", ""), "scope": k.scope, "note": k.note}
                 for k in context["headline"]],
        "caveats": caveats,
        "pdf_path": pdf_path(period, report.edition_id),
        # the link readers without an Airflow account open (crm_kpis.delivery.shared_links), if made
        "pdf_url": context["pdf_link"].url if context.get("pdf_link") else None,
        "pdf_link_expires": context["pdf_link"].expires_text if context.get("pdf_link") else None,
    }


def pdf_path(period: Any, edition_id: str = "") -> str:
    """The KPI history view's link to a rendered PDF (behind the Airflow login)."""
    query = {"grain": period.grain, "period": period.start_date.isoformat()}
    if edition_id:
        query["variant"] = edition_id
    return "/kpi-history/report.pdf?" + urlencode(query)


def _kpi_line(k: dict[str, Any]) -> str:
    extra = ", ".join(p for p in (k["status"], k["scope"], k["note"]) if p)
    return f"{k['value']} ({k['change']} vs previous, {k['yoy']} vs year ago)" + (f"; {extra}" if extra else "")


def slack_payload(s: dict[str, Any], pdf_url: str) -> dict[str, Any]:
    """Block Kit: header, what changed, the KPIs as fields (two columns), caveats, a button to the PDF.
    `text` is the notification's and screen readers' version of the same."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": s["title"][:150]}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": f"{s['company']} · {s['span']} · "
                                                                  f"compared with {s['compared_with']}"}]},
    ]
    if s.get("checks"):  # before the numbers that carry it
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f":warning: *{CHECK_SAYS}* "
                                                   + "; ".join(s["checks"])}})
    if s["movers"]:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "*What changed*\n" + "\n".join(
            f"• {m}" for m in s["movers"])}})
    fields = [{"type": "mrkdwn", "text": f"*{k['name']}*\n{_kpi_line(k)}"} for k in s["kpis"]]
    for i in range(0, len(fields), 10):  # Slack: at most 10 fields a section
        blocks.append({"type": "section", "fields": fields[i:i + 10]})
    if s["caveats"]:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": "; ".join(s["caveats"])}]})
    blocks.append({"type": "actions", "elements": [
        {"type": "button", "text": {"type": "plain_text", "text": "Open the PDF report"}, "url": pdf_url}]})
    text = s["title"] + (": " + "; ".join(s["movers"][:2]) if s["movers"] else "")
    return {"text": text, "blocks": blocks}


def teams_payload(s: dict[str, Any], pdf_url: str) -> dict[str, Any]:
    """A message with one Adaptive Card (version 1.4, what Teams renders from a Workflows webhook)."""
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": s["title"], "weight": "Bolder", "size": "Large", "wrap": True},
        {"type": "TextBlock", "text": f"{s['company']} · {s['span']} · compared with {s['compared_with']}",
         "isSubtle": True, "wrap": True, "spacing": "None"},
    ]
    if s.get("checks"):  # before the numbers that carry it
        body.append({"type": "TextBlock", "text": f"{CHECK_SAYS} " + "; ".join(s["checks"]), "color": "Attention",
                     "weight": "Bolder", "wrap": True})
    if s["movers"]:
        body.append({"type": "TextBlock", "text": "What changed", "weight": "Bolder", "wrap": True})
        body.extend({"type": "TextBlock", "text": f"- {m}", "wrap": True, "spacing": "None"} for m in s["movers"])
    body.append({"type": "FactSet", "facts": [{"title": k["name"], "value": _kpi_line(k)} for k in s["kpis"]]})
    if s["caveats"]:
        body.append({"type": "TextBlock", "text": "; ".join(s["caveats"]), "isSubtle": True, "wrap": True})
    card = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard",
            "version": "1.4", "body": body,
            "actions": [{"type": "Action.OpenUrl", "title": "Open the PDF report", "url": pdf_url}]}
    return {"type": "message", "attachments": [
        {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}]}


PAYLOADS = {"slack": slack_payload, "teams": teams_payload}


def alert_payload(channel: str, subject: str, says: str, rule: str, link: str,
                  button: str = "Open the KPI's history") -> dict[str, Any]:
    """An alert as a chat message: what happened, the detail (a KPI alert's rule, a failure's error),
    and a button to where to look (no button without a link)."""
    if channel == "slack":
        blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": f"*{says}*\n{rule}"}}]
        if link:
            blocks.append({"type": "actions", "elements": [
                {"type": "button", "text": {"type": "plain_text", "text": button}, "url": link}]})
        return {"text": subject, "blocks": blocks}
    card = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard", "version": "1.4",
            "body": [{"type": "TextBlock", "text": says, "weight": "Bolder", "wrap": True},
                     {"type": "TextBlock", "text": rule, "isSubtle": True, "wrap": True}],
            "actions": [{"type": "Action.OpenUrl", "title": button, "url": link}] if link else []}
    return {"type": "message", "attachments": [
        {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}]}
