"""Report rendering and the email: strict templates, escaping, n/a for missing history, MIME, idempotent send."""

from dataclasses import replace
from datetime import datetime
from email import policy
from email.parser import BytesParser

import pytest
from jinja2 import UndefinedError

from crm_kpis.compute import AreaResult
from crm_kpis.config.settings import ReportConfig, Settings
from crm_kpis.delivery.email import attachment_name, build_message, deliver
from crm_kpis.history.store import ensure_schema, publish_period, stage_area
from crm_kpis.kpis import REGISTRY
from crm_kpis.kpis.base import AREAS, KpiValue
from crm_kpis.periods import ReportPeriod
from crm_kpis.report.context import build_context
from crm_kpis.report.formatting import change_tone, format_change, format_value
from crm_kpis.report.render import render_template, write_pdf
from crm_kpis.sources.connections import engine_for

OCT = ReportPeriod.parse("monthly", "2026-10")
REPORT = ReportConfig("monthly_executive", "Monthly KPI report", "monthly", ("ceo@example.com",),
                      cc=("cfo@example.com",), reply_to="data@example.com",
                      headline=("sales.revenue", "sales.churn_rate", "marketing.nps"))
SETTINGS = Settings("UTC", "USD", "Acme <Rockets> & Co", {"monthly_executive": REPORT})
NOW = datetime(2026, 11, 2, 6, 0)


@pytest.mark.parametrize(("value", "unit", "text"), [
    (1234567.891, "money", "$1,234,568"), (12.5, "money", "$12.50"), (-2500.0, "money", "−$2,500"),
    (0.2345, "rate", "23.4 %"), (None, "rate", "n/a"), (1534.0, "count", "1,534"), (0.5, "hours", "30 min"),
    (5.8, "hours", "5.8 h"), (19.2, "days", "19.2 days"), (39.4, "seconds", "39 s"), (58.2, "score", "58.2"),
])
def test_format_value(value, unit, text):
    assert format_value(value, unit) == text


def test_changes_are_coloured_by_direction_not_sign():
    assert change_tone(0.04, 0.03, "down") == "bad"  # churn went up
    assert change_tone(300.0, 400.0, "down") == "good"  # cost went down
    assert change_tone(1.0, 2.0, None) == "neutral"
    assert format_change(0.25, 0.20, "rate") == ("+5.0 pp", "+25.0 %")
    assert format_change(5.0, 0.0, "count") == ("+5", "n/a")
    assert format_change(None, 3.0, "count") == ("n/a", "n/a")
    # a change too small to show is neither signed nor coloured
    assert format_change(0.034900, 0.034901, "rate")[0] == "0.0 pp"
    assert change_tone(0.034900, 0.034901, "up", "rate") == "neutral"


@pytest.fixture()
def warehouse(tmp_path):
    engine = engine_for(f"sqlite:///{tmp_path / 'warehouse.db'}")
    ensure_schema(engine)
    return engine


def publish_first_period(engine, period=OCT):
    """One period of history with a value for every KPI (1.0), and one undefined rate."""
    for area in AREAS:
        values = [KpiValue(k, 1.0, None, None) for k, d in REGISTRY.items() if d.area == area]
        if area == "sales":
            values = [v if v.kpi_id != "sales.churn_rate" else KpiValue("sales.churn_rate", None, 0.0, 0.0) for v in values]
        stage_area(engine, "run-1", AreaResult(area, period, values, {"orders": 10}, {"orders": {"duplicate": 2}}))
    publish_period(engine, period, "run-1", AREAS)


def test_first_period_without_previous_or_year_ago_renders_na(warehouse, tmp_path):
    publish_first_period(warehouse)
    context = build_context(warehouse, OCT, SETTINGS, REPORT, NOW)
    revenue = context["headline"][0]
    assert (revenue.value_text, revenue.previous_text, revenue.change_pct, revenue.year_ago_text) == ("$1.00", "n/a", "n/a", "n/a")
    assert context["headline"][1].value_text == "n/a"  # churn with zero denominator
    assert context["rejected_total"] == 2
    html = render_template("report.html.j2", {**context, "subject": "s"})
    assert "n/a" in html and "Appendix: KPI definitions" in html
    size = write_pdf(html, tmp_path / "r.pdf")
    assert size > 10_000


def test_templates_escape_data_and_fail_on_undefined(warehouse):
    publish_first_period(warehouse)
    context = build_context(warehouse, OCT, SETTINGS, REPORT, NOW)
    html = render_template("email.html.j2", {**context, "subject": "s"})
    assert "Acme &lt;Rockets&gt; &amp; Co" in html and "<Rockets>" not in html
    text = render_template("email.txt.j2", {**context, "subject": "s"})
    assert "Acme <Rockets> & Co" in text  # plain text is not HTML-escaped
    with pytest.raises(UndefinedError):
        render_template("email.html.j2", {k: v for k, v in context.items() if k != "run"} | {"subject": "s"})


def test_email_html_needs_no_style_block_or_external_resources(warehouse):
    publish_first_period(warehouse)
    html = render_template("email.html.j2", {**build_context(warehouse, OCT, SETTINGS, REPORT, NOW), "subject": "s"})
    assert "<style" not in html and "<script" not in html and "http" not in html.replace('http-equiv', '')
    assert 'role="presentation"' in html


def test_mime_message_has_text_html_and_pdf(tmp_path):
    pdf = tmp_path / "r.pdf"
    pdf.write_bytes(b"%PDF-1.7 test")
    msg = build_message(REPORT, OCT, "Monthly KPI report · October 2026", "plain", "<p>html</p>", pdf.read_bytes(),
                        "kpi@example.com", NOW)
    parsed = BytesParser(policy=policy.default).parsebytes(msg.as_bytes())
    assert parsed["To"] == "ceo@example.com" and parsed["Cc"] == "cfo@example.com"
    assert parsed["Reply-To"] == "data@example.com"
    assert parsed.get_body(("plain",)).get_content().strip() == "plain"
    assert "<p>html</p>" in parsed.get_body(("html",)).get_content()
    attachments = list(parsed.iter_attachments())
    assert [(a.get_content_type(), a.get_filename()) for a in attachments] == [
        ("application/pdf", "monthly-kpi-report-2026-10.pdf")]
    assert attachments[0].get_content() == b"%PDF-1.7 test"
    assert attachment_name(REPORT, OCT) == "monthly-kpi-report-2026-10.pdf"


def test_outbox_delivery_is_sent_once_unless_resent(warehouse, tmp_path, test_home):
    pdf = tmp_path / "r.pdf"
    pdf.write_bytes(b"%PDF-1.7 test")
    args = (warehouse, REPORT, OCT, "run-1", "subject", "text", "<p>h</p>", pdf)
    first = deliver(*args)
    assert (first.status, first.transport) == ("sent", "outbox")
    assert first.recipients == ("ceo@example.com", "cfo@example.com")
    assert deliver(*args).status == "skipped"  # a retry or re-run
    again = deliver(warehouse, REPORT, OCT, "run-2", "subject", "text", "<p>h</p>", pdf, resend=True)
    assert again.status == "sent" and again.location.endswith("-resend1.eml")
    assert again.message_id != first.message_id


def test_status_best_worst_and_letter_pages(warehouse, tmp_path):
    import subprocess

    from crm_kpis.config.settings import Target

    publish_first_period(warehouse)
    # a breakdown where smb is best and enterprise worst for the average order value (higher is
    # better, a mean: members compare like for like); revenue, a total, marks no member
    from crm_kpis.history.store import kpi_history
    with warehouse.begin() as conn:
        conn.execute(kpi_history.insert(), [
            {"kpi_id": kpi_id, "grain": "monthly", "period_start": OCT.start_date, "period_end": OCT.end_date,
             "timezone": "UTC", "dimension": "segment", "member": m, "value": v, "numerator": num,
             "denominator": den, "run_id": "run-1", "computed_at": NOW}
            for kpi_id, num, den in (("sales.revenue", None, None), ("sales.aov", 1.0, 1.0))
            for m, v in (("smb", 5.0), ("mid_market", 3.0), ("enterprise", 1.0))])
        # the company's average order value is a mean (sum over count), as the pipeline stores it
        conn.execute(kpi_history.update().where((kpi_history.c.kpi_id == "sales.aov") & (kpi_history.c.dimension == ""))
                     .values(numerator=9.0, denominator=9.0))
    settings = Settings("UTC", "USD", "Acme", {"monthly_executive": REPORT},
                        {"monthly": {"sales.revenue": Target(0.5, members={("segment", "smb"): Target(6.0)}),
                                     "marketing.nps": Target(2.0, 1.5)}})
    context = build_context(warehouse, OCT, settings, REPORT, NOW)
    revenue, _churn, nps = context["headline"]
    assert (revenue.status, nps.status) == ("on_target", "off_target")  # 1.0 >= 0.5; 1.0 < 1.5
    assert context["headline"][1].status is None  # churn has no target here
    sales = next(a for a in context["areas"] if a["id"] == "sales")
    segment = next(t for t in sales["breakdowns"] if t["dimension"] == "Customer segment")
    column = segment["columns"].index("Average order value")
    marks = {row["member"]: row["cells"][column]["mark"] for row in segment["rows"]}
    assert marks == {"smb": "best", "mid market": "", "enterprise": "worst"}
    assert {row["cells"][segment["columns"].index("Revenue")]["mark"] for row in segment["rows"]} == {""}
    member_status = {row["member"]: row["cells"][0]["status"] for row in segment["rows"]}
    assert member_status == {"smb": "off_target", "mid market": "", "enterprise": ""}  # 5.0 < 6.0 − 5 % = 5.7
    html = render_template("report.html.j2", {**context, "subject": "s"})
    assert "On target" in html and "Off target" in html
    pdf = tmp_path / "letter.pdf"
    write_pdf(html, pdf, "Letter")
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    assert "612 x 792 pts (letter)" in info
    fonts = subprocess.run(["pdffonts", str(pdf)], capture_output=True, text=True, check=True).stdout
    assert all(line.split()[-5] == "yes" for line in fonts.splitlines()[2:]), fonts  # every font embedded


def test_report_html_structure(warehouse):
    """Structural check of the report: areas in order, a row per KPI, the definitions appendix."""
    import re

    from crm_kpis.kpis import kpis_for

    publish_first_period(warehouse)
    html = render_template("report.html.j2", {**build_context(warehouse, OCT, SETTINGS, REPORT, NOW), "subject": "s"})
    sections = re.findall(r'<section class="area">\s*<h2>([^<]+)</h2>', html)
    assert sections == ["Marketing", "Sales", "Operations"]
    for area, body in zip(("marketing", "sales", "operations"), re.split(r'<section class="area">', html)[1:], strict=True):
        table = body.split("</table>", 1)[0]
        assert table.count('<td class="name">') == len(kpis_for(area, "monthly"))
    appendix = html.split("Appendix: KPI definitions", 1)[1]
    # compact (the default): one block per KPI with its formula, no ids; full: each with its id
    assert appendix.count('<div class="def">') == len(REGISTRY) and "<code>marketing.spend</code>" not in appendix
    assert "<strong>Marketing spend</strong>: Σ marketing_spend.amount in period" in appendix
    full = render_template("report.html.j2", {**build_context(warehouse, OCT, SETTINGS, replace(REPORT, appendix="full"),
                                                              NOW), "subject": "s"})
    assert full.split("Appendix: KPI definitions", 1)[1].count("<code>") == len(REGISTRY)
    none = render_template("report.html.j2", {**build_context(warehouse, OCT, SETTINGS, replace(REPORT, appendix="none"),
                                                              NOW), "subject": "s"})
    assert "Appendix" not in none and "About these numbers" in none
    assert html.count('class="tile"') == len(REPORT.headline)
    # words an executive knows: the period's days, pp and pts explained once
    assert "1–31 October 2026 (UTC)" in html and "end exclusive" not in html
    # only October 2026 is stored: the year-ago column's n/a is explained once, at the top
    assert 'October 2025 (not in the history: every "vs year ago" is n/a;' in html
    context = build_context(warehouse, OCT, SETTINGS, REPORT, NOW)
    for template in ("email.txt.j2", "email.html.j2"):  # the email says it once too, before the numbers
        body = render_template(template, {**context, "subject": "s"})
        assert body.count("October 2025 is not in the history: no year-ago comparison.") == 1, template
    assert html.count("percentage points (pp") == 1


def test_mistyped_kpi_ids_in_the_configuration_fail_clearly(warehouse):
    from crm_kpis.config.settings import Target

    publish_first_period(warehouse)
    typo = Settings("UTC", "USD", "Acme", {"monthly_executive": REPORT}, {"monthly": {"sales.revenu": Target(1.0)}})
    with pytest.raises(ValueError, match="targets.monthly.sales.revenu"):
        build_context(warehouse, OCT, typo, REPORT, NOW)


def test_the_render_log_says_what_was_rendered_not_weasyprints_steps(warehouse, tmp_path):
    """At INFO the render task's log says the pages, page size, kilobytes and seconds of the PDF it
    wrote; WeasyPrint's steps are not there: neither its per-page layout steps (dozens of lines a
    report) nor the parsing of its own stylesheets, which its import does ("Step 2 - Fetching and
    parsing CSS", seen in a real task's log). In a new process, as a worker's render task is, where
    WeasyPrint is imported for the first time and nothing else has configured logging."""
    import re
    import subprocess
    import sys

    publish_first_period(warehouse)
    context = build_context(warehouse, OCT, SETTINGS, REPORT, NOW)
    (tmp_path / "r.html").write_text(render_template("report.html.j2", {**context, "subject": "s"}))
    script = (
        "import logging, pathlib, sys\n"
        "logging.basicConfig(level=logging.INFO, stream=sys.stdout, format='%(name)s|%(message)s')\n"
        "from crm_kpis.report.render import write_pdf\n"
        f"folder = pathlib.Path({str(tmp_path)!r})\n"
        "print('size|', write_pdf((folder / 'r.html').read_text(), folder / 'r.pdf'))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = [line.split("|", 1) for line in done.stdout.splitlines() if "|" in line]
    assert not [m for name, m in lines if name.startswith(("weasyprint.progress", "fontTools"))], done.stdout
    size = int(dict(lines)["size"])
    said = [m for name, m in lines if name == "crm_kpis.report.render"]
    info = subprocess.run(["pdfinfo", str(tmp_path / "r.pdf")], capture_output=True, text=True, check=True).stdout
    pages = int(re.search(r"^Pages:\s+(\d+)", info, re.MULTILINE).group(1))
    assert pages > 1 and len(said) == 1 and re.fullmatch(
        rf"rendered .*r\.pdf: {pages} pages \(A4\), {round(size / 1024)} KB in \d+\.\d s", said[0]), said
