"""The KPI history view: the series it reads, its checks, and the plugin app inside Airflow's API
server (authentication through Airflow's own login, no SQL from request text)."""

from datetime import date, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, insert, select

from crm_kpis.history.store import ensure_schema, kpi_history
from crm_kpis.sources.connections import engine_for
from crm_kpis.ui import history_view
from crm_kpis.ui.history_view import ViewError, load_series

WIN = "sales.win_rate"  # a rate, daily and monthly, broken down by segment and rep team
# monthly history: Jan..Jun 2026 without April (a period never computed), won/closed per month
MONTHS = {date(2026, 1, 1): (3, 10), date(2026, 2, 1): (5, 10), date(2026, 3, 1): (1, 4),
          date(2026, 5, 1): (0, 0), date(2026, 6, 1): (7, 8)}


def _row(start, value, num, den, dimension="", member="", grain="monthly", kpi=WIN):
    end = date(start.year + (start.month == 12), start.month % 12 + 1, 1)
    return {"kpi_id": kpi, "grain": grain, "period_start": start, "dimension": dimension, "member": member,
            "period_end": end, "timezone": "Europe/Berlin", "value": value, "numerator": num, "denominator": den,
            "run_id": f"scheduled__{start.isoformat()}T00:00:00+00:00", "computed_at": datetime(2026, 11, 1, 8, 0, 0)}


#: the view's "today": July 2026, so that June is the newest month that has ended
TODAY = date(2026, 7, 10)


@pytest.fixture(autouse=True)
def _today(monkeypatch):
    monkeypatch.setattr(history_view, "_today", lambda: TODAY)


@pytest.fixture()
def warehouse(tmp_path):
    engine = engine_for(f"sqlite:///{tmp_path / 'warehouse.db'}")
    ensure_schema(engine)
    rows = [_row(s, n / d if d else None, n, d) for s, (n, d) in MONTHS.items()]
    rows += [_row(date(2026, 6, 1), 0.5, 1, 2, "segment", "smb"), _row(date(2026, 6, 1), 1.0, 6, 6, "segment", "enterprise"),
             _row(date(2026, 5, 1), None, 0, 0, "segment", "smb")]
    rows.append({**_row(date(2026, 6, 1), 0.25, 1, 4, grain="daily"), "period_end": date(2026, 6, 2)})
    with engine.begin() as conn:
        conn.execute(insert(kpi_history), rows)
    return engine


def test_series_is_oldest_first_with_the_missing_period_marked(warehouse):
    series = load_series(warehouse, WIN, "monthly", periods=6)
    assert [r.period_start.month for r in series.rows] == [1, 2, 3, 4, 5, 6]
    assert series.missing == [date(2026, 4, 1)]
    april = series.rows[3]
    assert (april.stored, april.value, april.run_id) == (False, None, None)
    # values as stored, unrounded: 3/10, 5/10, 1/4; May has 0 closed deals, so no rate (not 0)
    assert [r.value for r in series.rows if r.stored] == [0.3, 0.5, 0.25, None, 0.875]
    assert (series.rows[-1].numerator, series.rows[-1].denominator) == (7, 8)
    assert series.rows[-1].run_id == "scheduled__2026-06-01T00:00:00+00:00"
    assert series.breakdowns == {"segment": ["enterprise", "smb"]}


def test_series_limits_to_the_newest_periods_and_reads_one_grain(warehouse):
    assert [r.period_start.month for r in load_series(warehouse, WIN, "monthly", periods=2).rows] == [5, 6]
    daily = load_series(warehouse, WIN, "daily")
    # the last 60 days of the calendar up to yesterday (9 July): 11 May .. 9 July, one of them stored
    assert len(daily.rows) == 60 and (daily.rows[0].period_start, daily.rows[-1].period_start) == (
        date(2026, 5, 11), date(2026, 7, 9))
    assert [(r.period_start, r.value) for r in daily.rows if r.stored] == [(date(2026, 6, 1), 0.25)]


def test_periods_n_is_the_last_n_periods_of_the_calendar_with_gaps_at_both_ends(warehouse):
    # on 3 September the newest month that has ended is August: July and August were never computed
    late = load_series(warehouse, WIN, "monthly", periods=8, today=date(2026, 9, 3))
    assert [r.period_start.month for r in late.rows] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert late.missing == [date(2026, 4, 1), date(2026, 7, 1), date(2026, 8, 1)]
    assert [(g.label("monthly"), g.periods) for g in history_view.gap_ranges(late)] == [
        ("2026-04", 1), ("2026-07 .. 2026-08", 2)]
    # before the history's first month: November and December 2025 are a leading gap
    early = load_series(warehouse, WIN, "monthly", periods=8)
    assert early.rows[0].period_start == date(2025, 11, 1) and early.rows[-1].period_start == date(2026, 6, 1)
    assert [(g.label("monthly"), g.periods) for g in history_view.gap_ranges(early)] == [
        ("2025-11 .. 2025-12", 2), ("2026-04", 1)]
    # a period stored before it ended (a re-run on the 1st) stays in the window: it ends there
    assert load_series(warehouse, WIN, "monthly", periods=3, today=date(2026, 6, 1)).rows[-1].period_start == date(
        2026, 6, 1)


def test_breakdown_member_series_and_every_member_without_one(warehouse):
    smb = load_series(warehouse, WIN, "monthly", "segment", "smb", periods=2)
    assert [(r.period_start.month, r.value) for r in smb.rows] == [(5, None), (6, 0.5)]
    every = load_series(warehouse, WIN, "monthly", "segment", periods=3)
    assert every.member == "" and every.all_members
    # the rows are the company-wide values (which periods were computed); each member its own line
    assert [(r.period_start.month, r.value) for r in every.rows] == [(4, None), (5, None), (6, 0.875)]
    assert every.missing == [date(2026, 4, 1)]
    assert {m: {d.month: r.value for d, r in rows.items()} for m, rows in every.lines.items()} == {
        "enterprise": {6: 1.0}, "smb": {5: None, 6: 0.5}}


@pytest.mark.parametrize(("args", "message"), [
    (("no.such_kpi", "monthly"), "unknown KPI 'no.such_kpi'"),
    (("marketing.roi", "daily"), "monthly only"),
    ((WIN, "monthly", "channel", "email"), "no stored monthly breakdown by 'channel'"),
    ((WIN, "monthly", "segment", "smb' OR '1'='1"), "has no member \"smb' OR '1'='1\""),
    ((WIN, "monthly", "", "smb"), "a member needs a breakdown dimension"),
    ((WIN, "weekly"), "grain must be one of daily, monthly"),
])
def test_bad_requests_get_a_clear_message(warehouse, args, message):
    with pytest.raises(ViewError, match=message.replace("(", r"\(").replace("'", "'")):
        load_series(warehouse, *args)


def test_no_history_table_yet_is_an_empty_series(tmp_path):
    engine = engine_for(f"sqlite:///{tmp_path / 'empty.db'}")
    assert load_series(engine, WIN, "monthly").rows == []


# --- through Airflow's API server app, with the plugin loaded from plugins/ ----------------------
@pytest.fixture(scope="module")
def api(airflow_db):
    from airflow.api_fastapi.app import create_app

    return TestClient(create_app())


def _token(role="viewer"):
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="analyst", role=role))


@pytest.fixture()
def served(warehouse, monkeypatch):
    monkeypatch.setattr(history_view, "_warehouse", lambda: warehouse)
    return warehouse


@pytest.mark.parametrize("path", ["/kpi-history/", "/kpi-history/api/kpis",
                                  f"/kpi-history/api/history?kpi={WIN}&grain=monthly"])
def test_anonymous_requests_get_401(api, served, path):
    response = api.get(path)
    assert response.status_code == 401, response.text
    assert "KPI history" not in response.text


def test_a_forged_token_is_refused(api, served):
    assert api.get("/kpi-history/api/kpis", headers={"Authorization": "Bearer forged"}).status_code == 403


def test_a_user_who_may_not_read_the_dag_gets_403(api, served, monkeypatch):
    from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

    seen = []
    monkeypatch.setattr(SimpleAuthManager, "is_authorized_dag",
                        lambda self, *, method, user, details=None, access_entity=None: seen.append(details.id) or False)
    response = api.get(f"/kpi-history/api/history?kpi={WIN}&grain=daily", headers={"Authorization": f"Bearer {_token()}"})
    assert response.status_code == 403 and "crm_kpis_daily" in response.json()["detail"]
    assert seen == ["crm_kpis_daily"]


def test_history_json_for_a_logged_in_viewer(api, served):
    response = api.get(f"/kpi-history/api/history?kpi={WIN}&grain=monthly&periods=6",
                       headers={"Authorization": f"Bearer {_token()}"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["dag_id"] == "crm_kpis_monthly" and body["missing_periods"] == ["2026-04-01"]
    newest = body["periods"][0]
    assert (newest["period_start"], newest["value"], newest["numerator"], newest["denominator"]) == ("2026-06-01", 0.875, 7, 8)
    assert newest["run_id"] == "scheduled__2026-06-01T00:00:00+00:00"


def test_the_page_works_with_the_ui_cookie_and_links_each_period_to_its_run(api, served):
    response = api.get(f"/kpi-history/?kpi={WIN}&grain=monthly&periods=6", cookies={"_token": _token()})
    assert response.status_code == 200, response.text
    page = response.text
    assert "Win rate" in page and "<svg" in page
    assert "87.5 %" in page and "30.0 %" in page  # 7/8 and 3/10, formatted for people
    assert 'href="/dags/crm_kpis_monthly/runs/scheduled__2026-06-01T00:00:00+00:00"' in page
    assert "not computed" in page  # April
    assert page.count('<tr class="gap">') == 1


def test_request_text_never_reaches_sql(api, served):
    hostile = "sales.win_rate' OR '1'='1"
    headers = {"Authorization": f"Bearer {_token()}"}
    assert api.get("/kpi-history/api/history", params={"kpi": hostile}, headers=headers).status_code == 404
    member = api.get("/kpi-history/api/history", headers=headers,
                     params={"kpi": WIN, "dimension": "segment", "member": "x'; DROP TABLE kpi_history; --"})
    assert member.status_code == 404
    too_long = api.get("/kpi-history/api/history", params={"kpi": "k" * 81}, headers=headers)
    assert too_long.status_code == 422
    with served.connect() as conn:
        assert conn.execute(select(func.count()).select_from(kpi_history)).scalar_one() == 9


def test_the_page_shows_a_bad_choice_as_a_message_not_a_trace(api, served):
    response = api.get("/kpi-history/?kpi=marketing.roi&grain=daily", cookies={"_token": _token()})
    assert response.status_code == 404
    assert 'role="alert"' in response.text and "monthly only" in response.text and "Traceback" not in response.text


# --- gaps, CSV, side by side, chart, PDF links, readable errors -------------------------------------
def _cookie():
    return {"_token": _token()}


def test_consecutive_missing_periods_are_one_range_with_its_backfill(warehouse):
    from crm_kpis.ui.history_view import backfill_body, gap_ranges

    with warehouse.begin() as conn:  # Jan, Feb .. Jun stored without April; remove February and March too
        conn.execute(kpi_history.delete().where(kpi_history.c.period_start.in_([date(2026, 2, 1), date(2026, 3, 1)])))
    series = load_series(warehouse, WIN, "monthly", periods=6)
    (gap,) = gap_ranges(series)
    assert (gap.first, gap.last, gap.periods, gap.label("monthly")) == (date(2026, 2, 1), date(2026, 4, 1), 3,
                                                                         "2026-02 .. 2026-04")
    body = backfill_body("monthly", gap, "Europe/Berlin")
    # logical dates are the periods' local starts: 1 Feb is CET (+01:00), 1 April is CEST (+02:00)
    assert body == {"dag_id": "crm_kpis_monthly", "from_date": "2026-02-01T00:00:00+01:00",
                    "to_date": "2026-04-01T00:00:00+02:00", "reprocess_behavior": "none", "max_active_runs": 2,
                    "run_backwards": False, "dag_run_conf": {}}


def test_the_page_lists_a_gap_once_with_a_backfill_button(api, served):
    with served.begin() as conn:
        conn.execute(kpi_history.delete().where(kpi_history.c.period_start == date(2026, 3, 1)))
    page = api.get(f"/kpi-history/?kpi={WIN}&grain=monthly&periods=6", cookies=_cookie()).text
    assert "not computed: <b>2026-03 .. 2026-04</b> (2 periods)" in page
    assert page.count('<tr class="gap">') == 1 and "Backfill these 2 periods" in page
    assert "&#34;from_date&#34;: &#34;2026-03-01T00:00:00+00:00&#34;" in page or '"from_date": "2026-03-01T00:00:00+00:00"' in page


def test_csv_download_is_the_series_oldest_first_with_the_missing_period(api, served):
    response = api.get(f"/kpi-history/api/history.csv?kpi={WIN}&grain=monthly&periods=6", cookies=_cookie())
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"] == 'attachment; filename="sales.win_rate_monthly.csv"'
    lines = response.text.splitlines()
    assert lines[0].startswith("period,period_start,kpi_id,grain,dimension,member,value,numerator,denominator,status")
    assert [line.split(",")[0] for line in lines[1:]] == ["2026-01", "2026-02", "2026-03", "2026-04", "2026-05", "2026-06"]
    assert lines[1].split(",")[6:10] == ["0.3", "3.0", "10.0", "stored"]  # 3/10, unrounded
    assert lines[4].split(",")[6:10] == ["", "", "", "not computed"]     # April
    assert lines[5].split(",")[6:10] == ["", "0.0", "0.0", "stored"]    # May: no closed deals, no rate (not 0)


def test_members_side_by_side_with_their_share(api, served):
    from crm_kpis.ui.history_view import members_side_by_side

    series = load_series(served, WIN, "monthly", "segment", "smb")
    members, table = members_side_by_side(served, series)
    assert members == ["enterprise", "smb"]
    june = dict(table)[date(2026, 6, 1)]
    # a rate: the share is of the company's denominator (closed deals): smb 2 of 8, enterprise 6 of 8
    assert (june["smb"].value, june["smb"].share) == (0.5, 2 / 8)
    assert (june["enterprise"].value, june["enterprise"].share) == (1.0, 6 / 8)
    may = dict(table)[date(2026, 5, 1)]
    assert may["smb"].share is None and "enterprise" not in may  # 0 of 0: no share, not 0 %
    page = api.get(f"/kpi-history/?kpi={WIN}&grain=monthly&dimension=segment&member=smb", cookies=_cookie()).text
    assert "All members by segment, side by side" in page and "25.0%" in page and "75.0%" in page


def test_the_chart_has_a_y_axis_period_labels_and_the_target_line(api, served, monkeypatch):
    from crm_kpis.config.settings import Settings, Target, load_settings

    settings = load_settings()
    with_target = Settings(**{**settings.__dict__, "targets": {"monthly": {WIN: Target(0.6)}}})
    monkeypatch.setattr("crm_kpis.config.settings.load_settings", lambda: with_target)
    page = api.get(f"/kpi-history/?kpi={WIN}&grain=monthly&periods=6", cookies=_cookie()).text
    svg = page[page.index('<svg class="trend"'):page.index("</svg>")]
    import re

    texts = [t.strip() for t in re.findall(r"<text[^>]*>([^<]+)</text>", svg)]
    # round y values spanning 25 % .. 87.5 % and the 60 % target, in one precision
    assert [t for t in texts if t.endswith(" %")][:5] == ["20 %", "40 %", "60 %", "80 %", "100 %"]
    assert [t for t in texts if re.fullmatch(r"2026-0\d", t)] == ["2026-01", "2026-02", "2026-03", "2026-04",
                                                                   "2026-05", "2026-06"]
    assert "stroke-dasharray" in svg and "target 60.0 %" in texts
    assert "2026-06: 87.5 %" in texts  # the last value, in the margin beside the plot


def test_a_period_links_to_its_pdf_when_rendered(api, served, test_home):
    folder = test_home / "reports" / "monthly_executive"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "2026-06.pdf").write_bytes(b"%PDF-1.7 test")
    try:
        page = api.get(f"/kpi-history/?kpi={WIN}&grain=monthly", cookies=_cookie()).text
        assert page.count(">PDF</a>") == 1 and 'href="/kpi-history/report.pdf?grain=monthly&amp;period=2026-06-01" download' in page
        pdf = api.get("/kpi-history/report.pdf?grain=monthly&period=2026-06-01", cookies=_cookie())
        assert pdf.status_code == 200 and pdf.content == b"%PDF-1.7 test"
        assert api.get("/kpi-history/report.pdf?grain=monthly&period=2026-05-01", cookies=_cookie()).status_code == 404
        assert api.get("/kpi-history/report.pdf?grain=monthly&period=2026-06-01").status_code == 401
    finally:
        (folder / "2026-06.pdf").unlink()


@pytest.mark.parametrize(("query", "message"), [
    ("grain=weekly&kpi=sales.win_rate", "grain must be one of daily, monthly, not &#39;weekly&#39;"),
    ("grain=monthly&kpi=sales.win_rate&periods=abc", "periods must be a whole number between 1 and 400"),
    ("grain=monthly&kpi=sales.win_rate&periods=0", "periods must be between 1 and 400"),
])
def test_bad_values_get_a_readable_page_that_keeps_the_choice(api, served, query, message):
    response = api.get(f"/kpi-history/?{query}", cookies=_cookie())
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("text/html")
    assert message in response.text and 'role="alert"' in response.text
    assert '<option value="sales.win_rate" selected>' in response.text  # the KPI chosen stays chosen


@pytest.mark.parametrize("path", ["/kpi-history/openapi.json", "/kpi-history/docs", "/kpi-history/redoc"])
def test_the_apps_own_docs_are_off(api, served, path):
    assert api.get(path).status_code in (401, 404)
    assert api.get(path, cookies=_cookie()).status_code == 404


def test_a_breakdown_without_a_member_returns_every_member(api, served):
    query = f"kpi={WIN}&grain=monthly&dimension=segment&periods=3"
    body = api.get(f"/kpi-history/api/history?{query}", cookies=_cookie()).json()
    assert body["member"] == "" and body["missing_periods"] == ["2026-04-01"]
    assert [(p["period_start"], p["value"]) for p in body["periods"]] == [
        ("2026-06-01", 0.875), ("2026-05-01", None), ("2026-04-01", None)]  # company-wide, newest first
    members = {m["member"]: [(p["period_start"], p["value"], p["numerator"], p["denominator"]) for p in m["periods"]]
               for m in body["members"]}
    assert members == {"enterprise": [("2026-06-01", 1.0, 6, 6)],
                       "smb": [("2026-06-01", 0.5, 1, 2), ("2026-05-01", None, 0, 0)]}
    # the CSV: a line per period and member, oldest first; each line says why it has no value
    lines = [line.split(",") for line in api.get(f"/kpi-history/api/history.csv?{query}",
                                                 cookies=_cookie()).text.splitlines()[1:]]
    assert [(c[0], c[5], c[6], c[9]) for c in lines] == [
        ("2026-04", "enterprise", "", "not computed"), ("2026-04", "smb", "", "not computed"),
        ("2026-05", "enterprise", "", "no rows for this member"), ("2026-05", "smb", "", "stored"),
        ("2026-06", "enterprise", "1.0", "stored"), ("2026-06", "smb", "0.5", "stored")]


def test_the_page_draws_every_member_as_a_line_with_a_legend(api, served):
    import re

    page = api.get(f"/kpi-history/?kpi={WIN}&grain=monthly&dimension=segment&periods=6", cookies=_cookie()).text
    assert '<option value="" selected>all members</option>' in page
    svg = page[page.index('<svg class="trend"'):page.index("</svg>")]
    texts = [t.strip() for t in re.findall(r"<text[^>]*>([^<]+)</text>", svg)]
    assert "enterprise" in texts and "smb" in texts  # the legend
    assert len(re.findall(r'<g id="[0-9a-f]+-series_\d"', svg)) == 2  # two lines
    assert "<title>2026-06 enterprise: 100.0 %</title>" in svg and "<title>2026-06 smb: 50.0 %</title>" in svg


def test_the_page_shows_trailing_missing_periods_with_their_backfill(api, served, monkeypatch):
    monkeypatch.setattr(history_view, "_today", lambda: date(2026, 9, 3))  # July and August never computed
    page = api.get(f"/kpi-history/?kpi={WIN}&grain=monthly&periods=8", cookies=_cookie()).text
    assert "not computed: <b>2026-07 .. 2026-08</b> (2 periods)" in page
    assert page.count('<tr class="gap">') == 2 and page.count('class="backfill"') == 2
    assert '2026-08-01T00:00:00+00:00' in page  # the backfill's last logical date is August's start


def test_until_chooses_the_last_period_shown(api, served):
    assert [r.period_start.month for r in load_series(served, WIN, "monthly", periods=3, until=date(2026, 3, 1)).rows] \
        == [1, 2, 3]
    with pytest.raises(ViewError, match="a month's first day"):
        load_series(served, WIN, "monthly", until=date(2026, 3, 15))
    page = api.get(f"/kpi-history/?kpi={WIN}&grain=monthly&periods=3&until=2026-03-01", cookies=_cookie()).text
    assert 'value="2026-03-01"' in page and "until=2026-03-01" in page  # kept in the form and the CSV link
    assert "not computed" not in page
    bad = api.get(f"/kpi-history/?kpi={WIN}&grain=monthly&until=March", cookies=_cookie())
    assert bad.status_code == 422 and "until must be a date (YYYY-MM-DD)" in bad.text
    body = api.get(f"/kpi-history/api/history?kpi={WIN}&grain=monthly&periods=2&until=2026-02-01",
                   cookies=_cookie()).json()
    assert [p["period_start"] for p in body["periods"]] == ["2026-02-01", "2026-01-01"]


def test_the_api_gives_money_without_the_binary_noise_of_its_sum(api, served):
    """0.1 + 0.2 is stored as the float sum gives it (0.30000000000000004); an analyst's CSV and
    JSON say 0.3, to the 15 significant digits a float holds, and the history keeps the sum."""
    from crm_kpis.ui.history_view import without_float_noise

    assert without_float_noise(0.1 + 0.2) == 0.3 and repr(0.1 + 0.2) == "0.30000000000000004"
    assert without_float_noise(1351651.1199999999) == 1351651.12 and without_float_noise(None) is None
    assert without_float_noise(1 / 3) == 0.333333333333333 and without_float_noise(2.5e-12) == 2.5e-12
    june = ((kpi_history.c.kpi_id == WIN) & (kpi_history.c.grain == "monthly") & (kpi_history.c.dimension == "")
            & (kpi_history.c.period_start == date(2026, 6, 1)))
    with served.begin() as conn:
        conn.execute(kpi_history.update().where(june).values(value=0.1 + 0.2, numerator=1351651.1199999999))
    csv_line = api.get(f"/kpi-history/api/history.csv?kpi={WIN}&grain=monthly&periods=1&until=2026-06-01",
                       cookies=_cookie()).text.splitlines()[1].split(",")
    assert csv_line[6:8] == ["0.3", "1351651.12"]
    body = api.get(f"/kpi-history/api/history?kpi={WIN}&grain=monthly&periods=1&until=2026-06-01", cookies=_cookie())
    assert (body.json()["periods"][0]["value"], body.json()["periods"][0]["numerator"]) == (0.3, 1351651.12)
    with served.connect() as conn:  # stored as computed
        stored = conn.execute(kpi_history.select().where(june)).one()
    assert stored.value == 0.1 + 0.2
