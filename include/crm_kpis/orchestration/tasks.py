"""What each DAG task does, as plain functions of the run's data interval.

Why here: the DAG files stay wiring, and everything below can be called from a test, a shell or
another orchestrator with the same result. Every function takes the data interval, never `now()`.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from functools import partial
from html import escape
from typing import TYPE_CHECKING, Any, NoReturn

from crm_kpis.compute import compute_area
from crm_kpis.config.settings import ReportConfig, load_settings, ui_base_url
from crm_kpis.delivery.chat import deliver_to_channel
from crm_kpis.delivery.email import deliver, delivery_attempt
from crm_kpis.delivery.intents import DeliveryError, DeliveryRefused
from crm_kpis.delivery.reports_store import report_files, where
from crm_kpis.delivery.shared_links import pdf_link
from crm_kpis.history.catalogue import refresh as refresh_catalogue
from crm_kpis.history.store import (
    ensure_schema,
    publish_period,
    read_staged,
    recent_extremes,
    recent_rows_read,
    recent_values,
    stage_area,
)
from crm_kpis.kpis.base import AREAS
from crm_kpis.periods import ReportPeriod
from crm_kpis.quality import gate
from crm_kpis.quality.gate import GateConfig
from crm_kpis.report import messages
from crm_kpis.report.context import build_context
from crm_kpis.report.render import render_template, write_pdf, write_whole
from crm_kpis.report.what_changed import Mover
from crm_kpis.sources.connections import WAREHOUSE_CONN_ID, engine_for, looked_up_once
from crm_kpis.sources.errors import SourceConfigError
from crm_kpis.sources.extracts import EXTRACTS

if TYPE_CHECKING:
    from airflow.sdk import ObjectStoragePath

    from crm_kpis.delivery.reports_store import ReportFile


log = logging.getLogger(__name__)

DELIVER_CHOICES = ("auto", "yes", "no")


class PermanentError(RuntimeError):
    """An error that a retry cannot fix (a contract not met, a connection set up wrongly)."""


def fail_permanently(message: str) -> NoReturn:
    """Fail the task at once, without retries: Airflow's own AirflowFailException when installed."""
    try:
        from airflow.sdk.exceptions import AirflowFailException
    except ImportError:  # the package is usable without Airflow
        raise PermanentError(message) from None
    raise AirflowFailException(message)


def period_for(grain: str, interval_start: datetime | None, interval_end: datetime | None) -> ReportPeriod:
    """The run's period; a run before the configured `history_start` fails with that reason."""
    settings = load_settings()
    if interval_start is None or interval_end is None:
        fail_permanently("this run has no data interval (a run without a logical date): trigger it for a "
                         "period, e.g. `airflow dags trigger <dag> --logical-date 2026-10-01`")
    period = ReportPeriod.from_data_interval(grain, interval_start, interval_end, settings.timezone)  # type: ignore[arg-type]
    if period.start_date < settings.history_start:
        fail_permanently(f"{period} is before history_start {settings.history_start} (reports.yaml): "
                         "nothing is computed for it; lower history_start to compute older periods")
    return period


def report_for(grain: str) -> ReportConfig:
    return load_settings().report_for_grain(grain)


@looked_up_once()  # a task's connections, each read once from Airflow
def compute_and_stage(area: str, grain: str, interval_start: datetime, interval_end: datetime,
                      run_id: str) -> dict[str, Any]:
    """Extract and compute one area's KPIs, and stage them in the warehouse under the run id."""
    period = period_for(grain, interval_start, interval_end)
    try:
        result = compute_area(area, period)  # a source lacking a table or column: its KPIs n/a, said by the gate
    except SourceConfigError as exc:
        log.error("%s", exc)
        fail_permanently(str(exc))  # a retry cannot fix a connection's settings or create a file
    warehouse = engine_for(WAREHOUSE_CONN_ID)
    ensure_schema(warehouse)
    stage_area(warehouse, run_id, result)
    summary = result.summary()
    log.info("staged %s for %s: %s", area, period, summary)
    return summary


class QualityGateFailed(RuntimeError):
    """The period failed a hard data-quality check; nothing was published or sent."""


@looked_up_once()  # a task's connections, each read once from Airflow
def check_quality(grain: str, interval_start: datetime, interval_end: datetime, run_id: str) -> dict[str, Any]:
    """Run the quality gate on the staged period; raise on a hard failure, return the warnings."""
    period = period_for(grain, interval_start, interval_end)
    settings = load_settings()
    config = GateConfig.from_dict(settings.quality)
    warehouse = engine_for(WAREHOUSE_CONN_ID)
    staged = read_staged(warehouse, run_id)  # read once: the gate and the broken sources both look at it
    findings = gate.evaluate(period, staged,
                             recent_rows_read(warehouse, period, config.volume_periods), config,
                             recent_values(warehouse, period, config.plausibility_periods),
                             recent_extremes(warehouse, period, config.plausibility_periods),
                             {e.name: e.repeats for e in EXTRACTS.values() if e.repeats})
    for f in findings:
        (log.error if f.level == "fail" else log.warning)("quality %s %s: %s", f.level, f.check, f.message)
    failures = [f for f in findings if f.level == "fail"]
    if failures:
        message = f"{period}: {len(failures)} data-quality check(s) failed; history and report left unchanged: " + \
            "; ".join(f.message for f in failures)
        if all(f.retryable for f in failures):
            raise QualityGateFailed(message)  # retried with back-off: the source load may still finish
        fail_permanently(message)  # a value out of range will not fix itself: no retries
    warnings = [gate.warning_text(f) for f in findings]
    broken = broken_in(staged)
    if broken:
        warnings = [f"{UNREADABLE_SOURCE}: {why}; its KPIs are n/a" for why in broken.values()] + warnings
        _broken_source_policy(settings, grain, period, run_id, broken)
    log.info("quality gate passed for %s with %d warning(s)", period, len(warnings))
    return {"period": period.key, "warnings": warnings}


#: the gate's warning for a source that lacked a table or column this run (report.on_broken_source)
UNREADABLE_SOURCE = "unreadable_source"


def broken_in(staged: dict[str, dict[str, Any]]) -> dict[str, str]:
    """The sources the run's areas could not read (source -> why), each once however many areas
    read it: one cause, one warning, one alert."""
    out: dict[str, str] = {}
    for payload in staged.values():
        out.update(payload.get("broken") or {})
    return dict(sorted(out.items()))


def _broken_source_policy(settings: Any, grain: str, period: ReportPeriod, run_id: str, broken: dict[str, str]) -> None:
    """What a broken source does to the run, by the report's `on_broken_source`: `stop` fails it
    here (nothing published or sent; the failure alert is the one alert); `hold` and `send` go on
    (the approval step holds the report, or it is sent saying so) after one alert to ops, by the
    outbox when no mail server is configured."""
    report = settings.report_for_grain(grain)
    causes = "; ".join(broken.values())
    if report.on_broken_source == "stop":
        fail_permanently(f"{period}: {len(broken)} source(s) cannot be read (on_broken_source: stop); history and "
                         f"report left unchanged: {causes}")
    if not settings.alerted:
        log.warning("%s: %s; no alerts.to (or alerts.slack, alerts.teams) in reports.yaml to tell", period, causes)
        return
    from crm_kpis.orchestration.notifiers import AlertNotifier  # Airflow's SMTP notifier: not at import time

    held = "held for approval" if report.on_broken_source == "hold" else "sent, saying so in its subject"
    body = (f"<p>{escape(report.title)}, {escape(period.label)} (run {escape(run_id)}): "
            f"{len(broken)} source(s) cannot be read, so their KPIs are n/a; the others were computed. "
            f"The report is {held} (<code>on_broken_source</code> in reports.yaml).</p><ul>"
            + "".join(f"<li>{escape(why)}</li>" for why in broken.values())
            + "</ul><p>Run <code>python -m crm_kpis.sources check</code> for the fix.</p>")
    AlertNotifier(to=list(settings.alerts_to), subject=f"[CRM KPIs] {period.label}: a source cannot be read",
                  html_content=body, outbox_name=f"broken-source-{grain}-{period.key}-{run_id}",
                  chat=settings.alerts_chat).notify({})


@looked_up_once()  # a task's connections, each read once from Airflow
def publish(grain: str, interval_start: datetime, interval_end: datetime, run_id: str,
            warnings: list[str] | None = None) -> dict[str, Any]:
    """Swap the period's staged values into kpi_history in one transaction, then bring the KPI
    catalogue and targets tables in step with the code and configuration that published them."""
    period = period_for(grain, interval_start, interval_end)
    warehouse = engine_for(WAREHOUSE_CONN_ID)
    ensure_schema(warehouse)
    published = publish_period(warehouse, period, run_id, AREAS, warnings).as_dict()
    published["catalogue"] = refresh_catalogue(warehouse, load_settings())
    return published


def asset_event_extra(grain: str, interval_start: datetime, run_id: str, published: dict[str, Any]) -> dict[str, Any]:
    """The extra of the history Asset's event: enough for a consumer to refresh only that period."""
    return {"grain": grain, "period": published["period"], "period_start": interval_start.isoformat(),
            "run_id": run_id, "kpis": published["kpis"], "rows_written": published["rows_written"]}


def _movers(movers: list[Mover], n: int = 2) -> str:
    """The subject's movers: the first of "What changed" (money first, then against target)."""
    return ", ".join(f"{m.name} {m.change}" for m in movers[:n])


@looked_up_once()  # a task's connections, each read once from Airflow
def render_report(grain: str, interval_start: datetime, interval_end: datetime,
                  page_size: str = "A4", edition_id: str | None = None) -> dict[str, Any]:
    """Render the period's report (HTML and PDF) and its email bodies from the history: one
    edition (`edition_id`: "" the company-wide report, else a variant's id; the DAG maps one task
    per edition), or, without it, the company-wide report and each variant's (the tools, the tests)."""
    started = time.perf_counter()
    settings = load_settings()
    period = period_for(grain, interval_start, interval_end)
    report = settings.report_for_grain(grain)
    warehouse = engine_for(WAREHOUSE_CONN_ID)
    ensure_schema(warehouse)
    rendered_at = datetime.now(UTC).replace(tzinfo=None)
    if edition_id is not None:
        out = {**_render_edition(warehouse, period, settings, edition_of(report, edition_id), page_size, rendered_at),
               "seconds": round(time.perf_counter() - started, 2)}
        log.info("rendered %s edition %s for %s: %s", report.report_id, edition_id or "company", period, out)
        return out
    company, *variants = (_render_edition(warehouse, period, settings, edition, page_size, rendered_at)
                          for edition in report.editions())
    out = {**company, "variants": {v["variant"]: v for v in variants},
           "seconds": round(time.perf_counter() - started, 2)}
    log.info("rendered %s for %s: %s", report.report_id, period, out)
    return out


def edition_of(report: ReportConfig, edition_id: str) -> ReportConfig:
    """The report's edition named `edition_id` ("" or "company": the company-wide one); a name the
    configuration no longer has (reports.yaml changed under a running DAG) fails for good, saying so."""
    try:
        return report.edition("" if edition_id == "company" else edition_id)
    except KeyError as exc:
        fail_permanently(str(exc.args[0]))


def _render_edition(warehouse: Any, period: ReportPeriod, settings: Any, edition: ReportConfig, page_size: str,
                    rendered_at: datetime) -> dict[str, Any]:
    context = build_context(warehouse, period, settings, edition, rendered_at=rendered_at)
    movers = _movers(context["movers"])
    subject = f"{edition.edition_title} · {period.label}" + (f": {movers}" if movers else "")
    if context["checks"]:  # a magnitude far from its history: said before the numbers that carry it
        subject = f"{messages.check_prefix(context['checks'])} · {subject}"
    if context["incomplete"]:  # where the reader looks first: a source could not be read this run
        subject = f"INCOMPLETE ({len(context['incomplete'])} source(s) unreadable) · {subject}"
    context["subject"] = subject
    # the PDF's link for readers without an Airflow account (email, chat), valid link_days from now
    context["pdf_link"] = pdf_link(edition, period, rendered_at)
    files = report_files(edition, period)
    files["pdf"].parent.mkdir(parents=True, exist_ok=True)
    html = render_template("report.html.j2", context)
    # each file whole or not at all: a full disk or a killed worker leaves the previous one as it was
    write_whole(files["html"], html)
    pdf_bytes = write_pdf(html, files["pdf"], page_size)
    write_whole(files["email.html"], render_template("email.html.j2", context))
    write_whole(files["email.txt"], render_template("email.txt.j2", context))
    write_whole(files["subject"], subject)
    write_whole(files["message.json"], json.dumps(messages.summary(context), indent=1))
    if edition.variant is not None:
        log.info("rendered variant %s (%s): %s", edition.edition_id, edition.variant.label, where(files["pdf"]))
    return {"variant": edition.edition_id, "pdf": where(files["pdf"]), "pdf_bytes": pdf_bytes, "subject": subject}


def wants_delivery(deliver_param: str, run_type: str | None) -> bool:
    """`auto` sends for scheduled and manual runs but not for backfills; `yes`/`no` decide."""
    if deliver_param not in DELIVER_CHOICES:
        raise ValueError(f"deliver must be one of {DELIVER_CHOICES}, not {deliver_param!r}")
    if deliver_param == "auto":
        return (run_type or "").lower() != "backfill"
    return deliver_param == "yes"


@looked_up_once()  # a task's connections, each read once from Airflow
def send_report(grain: str, interval_start: datetime, interval_end: datetime, run_id: str,
                deliver_param: str = "auto", resend: bool = False, run_type: str | None = None,
                run_instance: str | None = None, test_to: str | None = None,
                test_variant: str | None = None, edition_id: str | None = None) -> dict[str, Any]:
    """Email the rendered report once per period and edition (the company-wide report and each
    variant's, each to its own recipients; SMTP when configured, else the outbox). With
    `edition_id` ("" the company-wide report, else a variant's id), that edition only: the DAG
    maps one task per edition, so each is retried and approved on its own.

    With `test_to`, only that address gets them, marked as tests, whatever `deliver` says (asking
    for a test is asking to send one); `test_variant` picks one edition ("company" the company-wide
    one, else a variant id). The report's own deliveries are left as they were.

    Every edition is tried, whatever happened to the others: a recipient still pending (the server
    was down, a 4xx) fails the task so that its retry sends to the pending ones only; a recipient
    refused for good, or whose outcome cannot be known, fails it for good once nothing is pending.
    """
    period = period_for(grain, interval_start, interval_end)
    report = report_for(grain)
    test_to = (test_to or "").strip() or None
    if test_to is None and not wants_delivery(deliver_param, run_type):
        reason = f"not emailed: the run does not deliver (deliver={deliver_param}, {run_type} run)"
        log.info("%s for %s: %s", report.report_id, period, reason)
        return {"status": "not requested", "deliver": deliver_param, "run_type": run_type, "skip_reason": reason}
    warehouse = engine_for(WAREHOUSE_CONN_ID)
    ensure_schema(warehouse)
    if test_to is None and report.send_when != "always":
        quiet = _nothing_to_say(warehouse, report, period)
        if quiet:
            log.info("%s for %s: %s", report.report_id, period, quiet)
            return {"status": "not needed", "send_when": report.send_when, "skip_reason": quiet}
    editions = report.editions() if edition_id is None else (edition_of(report, edition_id),)
    if test_to is not None and (test_variant or "").strip():
        chosen = edition_of(report, test_variant.strip())  # type: ignore[union-attr]
        editions = tuple(e for e in editions if e.edition_id == chosen.edition_id)
        if not editions:
            reason = f"not sent: the test send asks for the edition {test_variant.strip()!r} only"  # type: ignore[union-attr]
            log.info("%s for %s: %s", report.report_id, period, reason)
            return {"status": "not requested", "test_variant": test_variant, "skip_reason": reason}
    results: list[dict[str, Any]] = []
    pending: list[str] = []
    refused: list[str] = []
    for edition in editions:
        if test_to is None and (unknown := unknown_member(warehouse, edition, period)):
            log.error("%s", unknown)
            refused.append(unknown)  # the others are sent; the task then fails and the alert says why
            continue
        files = report_files(edition, period)
        if not files["pdf"].exists():
            raise FileNotFoundError(f"{where(files['pdf'])} is missing: the render task must run before the send task, "
                                    "and every worker must see the same reports_url (a shared store, not each "
                                    "worker's own disk)")
        if test_to is None:  # chat channels get no test send: test_to is one email address
            for channel, conn_id in edition.channels:
                _collect(partial(_post, warehouse, edition, period, run_id, channel, conn_id, files, resend,
                                 run_instance or run_id), results, pending, refused)
        if not (edition.to or edition.cc or edition.bcc) and test_to is None:
            continue  # an edition for chat channels only
        _collect(partial(_email, warehouse, edition, period, run_id, files["subject"].read_text(encoding="utf-8"),
                         files["email.txt"].read_text(encoding="utf-8"),
                         files["email.html"].read_text(encoding="utf-8"), files["pdf"], resend, run_instance,
                         test_to), results, pending, refused)
    _settle(pending, refused)
    emails = [r for r in results if r["channel"] == "email"]
    company = next((r for r in emails if not r["variant"]), emails[0] if emails else {"status": "sent"})
    out = {**company, "variants": {r["variant"]: r for r in emails if r["variant"]},
           "chat": [r for r in results if r["channel"] != "email"]}
    if any(r["status"] == "sent" for r in results):
        out.pop("skip_reason", None)  # something went out (a variant, a channel): the task did its work
    return out


def unknown_member(warehouse: Any, edition: ReportConfig, period: ReportPeriod) -> str | None:
    """Why a variant's edition is not sent: its member is none of those the period's history knows
    for its dimension (a typo in reports.yaml would otherwise email an all-n/a report every period)."""
    from crm_kpis.history.store import period_members

    variant = edition.variant
    if variant is None:
        return None
    known = period_members(warehouse, period, variant.dimension)
    if variant.member in known:
        return None
    listed = ", ".join(repr(m) for m in known[:12]) + (" …" if len(known) > 12 else "") if known else "none"
    return (f"{edition.report_id} variant {edition.edition_id} for {period}: not sent, since {variant.dimension} "
            f"member {variant.member!r} is not among the members of the period's history ({listed}); its edition "
            f"would be all n/a. Fix `member` of that variant in reports.yaml (spelling and case as listed)")


def _email(warehouse: Any, edition: ReportConfig, period: ReportPeriod, run_id: str, subject: str, text: str,
           html: str, pdf: ReportFile | None, resend: bool = False, run_instance: str | None = None,
           test_to: str | None = None) -> dict[str, Any]:
    """Email one edition (or a KPI alert: no PDF) exactly once; the outcome as `_collect` reads it."""
    result = deliver(warehouse, edition, period, run_id, subject, text, html, pdf, resend=resend,
                     run_instance=run_instance, test_to=test_to)
    out = {**result.as_dict(), "channel": "email",
           "target": f"{edition.report_id} {edition.edition_id or 'company-wide'} {period.key}",
           # refusals an earlier try of this run met: still to be said
           "problem": "; ".join(f"{r} {p}" for r, p in result.problems.items())}
    if result.status == "skipped" and test_to is not None:
        out["skip_reason"] = f"not emailed: this run's test send to {test_to} already went out"
    elif result.status == "skipped":
        out["skip_reason"] = ("not emailed: this delivery already went out (set resend to send again); "
                              f"recipients with the report: {', '.join(result.recipients) or 'none'}")
    return out


def _nothing_to_say(warehouse: Any, report: ReportConfig, period: ReportPeriod) -> str:
    """Why a report with `send_when` alert or change is not sent for the period ("" to send it)."""
    if report.send_when == "alert":
        if fired_alerts(warehouse, load_settings(), period):
            return ""
        return "not sent: send_when is alert and no KPI alert fired for the period"
    summary = json.loads(report_files(report, period)["message.json"].read_text(encoding="utf-8"))
    return "" if summary["movers"] else "not sent: send_when is change and no headline KPI moved"


def _post(warehouse: Any, edition: ReportConfig, period: ReportPeriod, run_id: str, channel: str, conn_id: str,
          files: dict[str, ObjectStoragePath], resend: bool, run_instance: str) -> dict[str, Any]:
    """Post the edition's summary to one chat channel, with the link to its PDF: the shared one made
    at render time, or (no link secret set) the one behind the UI's login."""
    summary = json.loads(files["message.json"].read_text(encoding="utf-8"))
    payload = messages.PAYLOADS[channel](summary, summary.get("pdf_url") or ui_base_url() + summary["pdf_path"])
    attempt = delivery_attempt(warehouse, edition, period, run_instance, resend, edition.edition_id)
    out = deliver_to_channel(warehouse, edition, period, run_id, channel, conn_id, payload, attempt, run_instance)
    return {**out, "variant": edition.edition_id}


# --- KPI alerts ------------------------------------------------------------------------------------------
def fired_alerts(engine: Any, settings: Any, period: ReportPeriod) -> list[Any]:
    """The period's KPI alerts that fire, from the published history only (the same every time)."""
    from crm_kpis.history.store import read_history
    from crm_kpis.kpis import REGISTRY
    from crm_kpis.report.formatting import format_value
    from crm_kpis.report.kpi_alerts import evaluate, starts_needed
    from crm_kpis.report.scope import value_of

    rules = [r for r in settings.kpi_alerts if r.grain == period.grain]
    unknown = [f"{r.rule_id}: {r.kpi_id}" for r in rules if r.kpi_id not in REGISTRY]
    if unknown:
        fail_permanently(f"kpi_alerts in reports.yaml name unknown KPIs: {', '.join(unknown)}")
    fired = []
    for rule in rules:
        unit = REGISTRY[rule.kpi_id].unit
        rows = read_history(engine, period.grain, starts_needed(rule, period), dimensions=(rule.dimension,))
        rows = rows[(rows["kpi_id"] == rule.kpi_id) & (rows["member"] == rule.member)]
        values = {r.period_start: value_of(r.value) for r in rows.itertuples(index=False)}
        hit = evaluate(rule, values, period, unit, lambda v, u=unit: format_value(v, u, settings.currency))
        if hit is not None:
            fired.append(hit)
    return fired


@looked_up_once()  # a task's connections, each read once from Airflow
def send_kpi_alerts(grain: str, interval_start: datetime, interval_end: datetime, run_id: str,
                    deliver_param: str = "auto", run_type: str | None = None,
                    run_instance: str | None = None) -> dict[str, Any]:
    """Send each KPI alert that fires for the period to its owners, once per (rule, period), after
    the quality gate passed and the history was published (email, Slack, Teams as the rule says)."""
    from crm_kpis.kpis import REGISTRY
    from crm_kpis.report.kpi_alerts import describe

    period = period_for(grain, interval_start, interval_end)
    settings = load_settings()
    warehouse = engine_for(WAREHOUSE_CONN_ID)
    ensure_schema(warehouse)
    fired = fired_alerts(warehouse, settings, period)
    if not fired:
        rules = len([r for r in settings.kpi_alerts if r.grain == grain])
        log.info("no KPI alert fired for %s (%d %s rule(s) in reports.yaml)", period, rules, grain)
        return {"status": "none fired", "rules": rules}
    if not wants_delivery(deliver_param, run_type):
        reason = f"{len(fired)} alert(s) fired, not sent: the run does not deliver (deliver={deliver_param}, {run_type} run)"
        log.info("%s for %s: %s", reason, period, ", ".join(f.rule.rule_id for f in fired))
        return {"status": "not requested", "fired": [f.rule.rule_id for f in fired], "skip_reason": reason}
    base = ui_base_url()
    pending: list[str] = []
    refused: list[str] = []
    sent: list[dict[str, Any]] = []
    for hit in fired:
        rule, name = hit.rule, REGISTRY[hit.rule.kpi_id].name
        who = f" ({rule.member.replace('_', ' ')})" if rule.member else ""
        # the history up to the alerted period, so that a re-run of an old period links to it too
        query = f"grain={grain}&kpi={rule.kpi_id}" + (f"&dimension={rule.dimension}&member={rule.member}"
                                                      if rule.member else "") + f"&until={period.start_date}"
        link = f"{base}/plugin/kpi-history?{query}"
        edition = ReportConfig(f"kpi_alert.{rule.rule_id}", f"KPI alert: {name}{who}", grain, to=rule.to,
                               slack=rule.slack, teams=rule.teams)
        subject = f"[CRM KPIs alert] {name}{who} {period.label}: {hit.says}"
        says = f"{name}{who}, {period.label} ({period.span}, {period.tz}): {hit.says}."
        rule_text = f"Rule {rule.rule_id}: {describe(rule, REGISTRY[rule.kpi_id].unit)}."
        text = f"{says}\n{rule_text}\nHistory: {link}\n"
        html = (f"<p><b>{escape(says)}</b></p><p>{escape(rule_text)}</p>"
                f"<p><a href=\"{escape(link)}\">The KPI's history</a></p>")
        attempt = delivery_attempt(warehouse, edition, period, run_instance or run_id, False, "")
        for channel, conn_id in edition.channels:
            payload = messages.alert_payload(channel, subject, says, rule_text, link)
            _collect(partial(deliver_to_channel, warehouse, edition, period, run_id, channel, conn_id, payload, attempt,
                             run_instance or run_id), sent, pending, refused)
        if edition.to:
            _collect(partial(_email, warehouse, edition, period, run_id, subject, text, html, None,
                             run_instance=run_instance), sent, pending, refused)
    _settle(pending, refused)
    return {"status": "sent", "fired": [f.rule.rule_id for f in fired], "deliveries": sent}


def _collect(call: Any, done: list[dict[str, Any]], pending: list[str], refused: list[str]) -> None:
    """Run one delivery; a pending one is retried by the task, a refused one is reported."""
    try:
        result = call()
    except DeliveryError as exc:
        log.warning("%s", exc)
        pending.append(str(exc))
        return
    except DeliveryRefused as exc:
        log.error("%s", exc)
        refused.append(str(exc))
        return
    if result.get("problem"):
        refused.append(f"{result['target']}: {result['problem']}")
    done.append(result)


def _settle(pending: list[str], refused: list[str]) -> None:
    """After every delivery was tried: a pending one fails the task for its retry (which sends only
    what is pending), else a refused or unknowable one fails it for good (no retry will change it)."""
    if pending:
        raise DeliveryError(" | ".join(pending + refused))
    if refused:
        fail_permanently(" | ".join(refused))


# --- approval -------------------------------------------------------------------------------------------------
@looked_up_once()  # a task's connections, each read once from Airflow
def approval_request(grain: str, interval_start: datetime, interval_end: datetime, deliver_param: str = "auto",
                     run_type: str | None = None, test_to: str | None = None,
                     edition_id: str | None = None) -> dict[str, Any]:
    """Whether the period's report needs a person's approval (crm_kpis.orchestration.approval), and what to ask:
    the period, the quality gate's warnings and a link to the edition's rendered PDF (`edition_id`:
    "" the company-wide report, else a variant's; without it, every edition's). A run that will
    send nothing to the recipients (a backfill, `deliver: no`, a test send) asks nobody."""
    from crm_kpis.history.store import read_run

    period = period_for(grain, interval_start, interval_end)
    report = report_for(grain)
    editions = report.editions() if edition_id is None else (edition_of(report, edition_id),)
    title = report.title if edition_id is None else editions[0].edition_title
    if (test_to or "").strip():
        return {"needed": False, "reason": f"a test send goes to {test_to.strip()} only, not to the "  # type: ignore[union-attr]
                                           "report's recipients: nothing to approve"}
    if not wants_delivery(deliver_param, run_type):
        return {"needed": False, "reason": f"the run sends nothing (deliver={deliver_param}, {run_type} run): "
                                           "nothing to approve"}
    run = read_run(engine_for(WAREHOUSE_CONN_ID), period) or {}
    warnings = list(run.get("warnings") or [])
    when = report.approval.when
    unreadable = [w for w in warnings if w.startswith(f"{UNREADABLE_SOURCE}:")]
    if unreadable and report.on_broken_source == "hold":
        when = "always"  # held whatever `approval.when` says: a source could not be read
    if when == "never" or (when == "warnings" and not warnings):
        reason = "approval is never asked for this report" if when == "never" else \
            "the quality gate raised no warning for the period"
        return {"needed": False, "reason": reason}
    reason = (f"{len(unreadable)} source(s) could not be read (on_broken_source: hold)" if unreadable
              and report.on_broken_source == "hold" else "the report asks for approval every time" if when == "always"
              else f"the quality gate raised {len(warnings)} warning(s)")
    links = [_approval_link(e, period) for e in editions]
    timeout = report.approval
    which = "every edition" if edition_id is None else "this edition"
    body = "\n".join([
        f"**{title}, {period.label}** ({period.span}, {period.tz}) is rendered and waits for approval: {reason}.",
        "", "**Data warnings**" if warnings else "No data warnings.", *[f"- {w}" for w in warnings], "",
        "**The rendered report**" if len(links) == 1 else "**The rendered reports**", *links, "",
        f"Approve sends {which} to its recipients; Reject sends nothing of it. Unanswered after "
        f"{timeout.timeout_hours:g} h: {timeout.on_timeout}.",
    ])
    return {"needed": True, "reason": reason, "subject": f"Send the {title} for {period.label}?",
            "body": body, "warnings": warnings}


def _approval_link(edition: ReportConfig, period: ReportPeriod) -> str:
    """An edition's line in the approval request: its shared PDF link (the approver may read the
    request in an email or a chat notification, away from the Airflow login), else the UI's."""
    link = pdf_link(edition, period, datetime.now(UTC).replace(tzinfo=None))
    if link is None:
        return f"- [{edition.edition_title}]({ui_base_url()}{messages.pdf_path(period, edition.edition_id)})"
    return f"- [{edition.edition_title}]({link.url}) (opens without a login until {link.expires_text})"
