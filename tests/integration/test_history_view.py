"""The KPI history view: the series it reads, its checks, and the plugin app inside Airflow's API
server (authentication through Airflow's own login, no SQL from request text)."""

from datetime import date, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, insert, select

from crm_kpis import history_view
from crm_kpis.history import ensure_schema, kpi_history
from crm_kpis.history_view import ViewError, load_series
from crm_kpis.sources import engine_for

WIN = "sales.win_rate"  # a rate, daily and monthly, broken down by segment and rep team
# monthly history: Jan..Jun 2026 without April (a period never computed), won/closed per month
MONTHS = {date(2026, 1, 1): (3, 10), date(2026, 2, 1): (5, 10), date(2026, 3, 1): (1, 4),
          date(2026, 5, 1): (0, 0), date(2026, 6, 1): (7, 8)}


def _row(start, value, num, den, dimension="", member="", grain="monthly", kpi=WIN):
    end = date(start.year + (start.month == 12), start.month % 12 + 1, 1)
    return {"kpi_id": kpi, "grain": grain, "period_start": start, "dimension": dimension, "member": member,
            "period_end": end, "timezone": "Europe/Berlin", "value": value, "numerator": num, "denominator": den,
            "run_id": f"scheduled__{start.isoformat()}T00:00:00+00:00", "computed_at": datetime(2026, 11, 1, 8, 0, 0)}


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
    series = load_series(warehouse, WIN, "monthly")
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
    assert [(r.period_start, r.value) for r in daily.rows] == [(date(2026, 6, 1), 0.25)]


def test_breakdown_member_series_and_its_default_member(warehouse):
    smb = load_series(warehouse, WIN, "monthly", "segment", "smb")
    assert [(r.period_start.month, r.value) for r in smb.rows] == [(5, None), (6, 0.5)]
    first = load_series(warehouse, WIN, "monthly", "segment")
    assert first.member == "enterprise" and [r.value for r in first.rows] == [1.0]


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
    response = api.get(f"/kpi-history/api/history?kpi={WIN}&grain=monthly",
                       headers={"Authorization": f"Bearer {_token()}"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["dag_id"] == "crm_kpis_monthly" and body["missing_periods"] == ["2026-04-01"]
    newest = body["periods"][0]
    assert (newest["period_start"], newest["value"], newest["numerator"], newest["denominator"]) == ("2026-06-01", 0.875, 7, 8)
    assert newest["run_id"] == "scheduled__2026-06-01T00:00:00+00:00"


def test_the_page_works_with_the_ui_cookie_and_links_each_period_to_its_run(api, served):
    response = api.get(f"/kpi-history/?kpi={WIN}&grain=monthly", cookies={"_token": _token()})
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
