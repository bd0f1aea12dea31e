"""Links to a rendered PDF that open without an Airflow account: signed for one file, expiring,
refused in words when changed or expired, through the plugin inside Airflow's API server app."""

from datetime import UTC, date, datetime, timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from fastapi.testclient import TestClient

from crm_kpis.config.settings import load_settings
from crm_kpis.delivery import shared_links
from crm_kpis.delivery.shared_links import LINK_SECRET_ENV, LinkRefused, pdf_link, signed_query, verify
from crm_kpis.periods import ReportPeriod

SECRET = b"s" * 40
OCT = date(2026, 10, 1)
NOW = datetime(2026, 11, 1, 6, 0)


def _query(**changes):
    query = {k: v[0] for k, v in parse_qs(signed_query(SECRET, "monthly", OCT, "", NOW + timedelta(days=30))).items()}
    return {**query, **changes}


def test_a_signed_link_opens_its_own_file_until_it_expires():
    q = _query()
    args = (q["grain"], q["period"], q.get("variant", ""), q["expires"], q["sig"])
    assert verify(SECRET, *args, now=NOW.replace(tzinfo=UTC)) == OCT
    # expires 30 days after 1 November 06:00 UTC: 1 December 06:00 UTC; refused from then on
    assert int(q["expires"]) == int(datetime(2026, 12, 1, 6, 0, tzinfo=UTC).timestamp())
    assert verify(SECRET, *args, now=datetime(2026, 12, 1, 5, 59, 59, tzinfo=UTC)) == OCT
    with pytest.raises(LinkRefused, match="expired on 01 December 2026, 06:00 UTC") as refused:
        verify(SECRET, *args, now=datetime(2026, 12, 1, 6, 0, tzinfo=UTC))
    assert refused.value.status_code == 410


@pytest.mark.parametrize("change", [{"period": "2026-09-01"}, {"grain": "daily"}, {"variant": "segment-smb"},
                                    {"expires": "4102444800"}, {"sig": "0" * 64}, {"sig": ""}, {"period": "Oct"}])
def test_a_link_changed_in_any_part_is_refused(change):
    q = _query(**change)
    with pytest.raises(LinkRefused, match="not valid: it is incomplete or was changed") as refused:
        verify(SECRET, q["grain"], q["period"], q.get("variant", ""), q["expires"], q["sig"], now=NOW.replace(tzinfo=UTC))
    assert refused.value.status_code == 403
    with pytest.raises(LinkRefused, match="not valid"):  # another server's secret signs other links
        q = _query()
        verify(b"t" * 40, q["grain"], q["period"], "", q["expires"], q["sig"], now=NOW.replace(tzinfo=UTC))


def test_without_a_secret_there_is_no_shared_link_and_a_short_one_is_refused(monkeypatch):

    said = []
    monkeypatch.setattr(shared_links, "log", type("Log", (), {"warning": lambda self, m, *a: said.append(m % a)})())
    monkeypatch.delenv(LINK_SECRET_ENV, raising=False)
    report = load_settings().report_for_grain("monthly")
    period = ReportPeriod("monthly", OCT)
    assert pdf_link(report, period, NOW) is None
    assert said and said[0].startswith("no shared link for monthly_executive 2026-10: set CRM_KPIS_LINK_SECRET")
    with pytest.raises(LinkRefused, match="not enabled on this server") as refused:
        verify(None, "monthly", "2026-10-01", "", "1", "x")
    assert refused.value.status_code == 503
    monkeypatch.setenv(LINK_SECRET_ENV, "short")
    with pytest.raises(ValueError, match="has 5 characters; use at least 32"):
        shared_links.link_secret()


def test_the_link_is_the_plugins_route_for_a_local_store_and_the_stores_own_where_it_presigns(monkeypatch):
    monkeypatch.setenv(LINK_SECRET_ENV, SECRET.decode())
    monkeypatch.setattr(shared_links, "ui_base_url", lambda: "https://airflow.example.com")
    report = load_settings().report_for_grain("monthly")
    period = ReportPeriod("monthly", OCT)
    link = pdf_link(report, period, NOW)
    assert link.kind == "signed" and link.expires_at == NOW + timedelta(days=report.link_days)
    parts = urlsplit(link.url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://airflow.example.com/kpi-history/shared/report.pdf"
    q = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    assert verify(SECRET, q["grain"], q["period"], q["variant"], q["expires"], q["sig"], now=NOW.replace(tzinfo=UTC)) == OCT
    assert link.expires_text == "01 December 2026, 06:00 UTC"

    class Presigning:  # a store whose filesystem presigns (S3, GCS): Airflow's ObjectStoragePath.sign
        def sign(self, expiration):
            return f"https://bucket.example.com/monthly_executive/2026-10.pdf?X-Amz-Expires={expiration}"

    monkeypatch.setattr("crm_kpis.delivery.reports_store.report_files", lambda *a: {"pdf": Presigning()})
    presigned = pdf_link(report, period, NOW)
    assert presigned.kind == "presigned" and presigned.url.endswith(f"X-Amz-Expires={30 * 86400}")


# --- through Airflow's API server, with the plugin loaded from plugins/ -------------------------------
@pytest.fixture(scope="module")
def api(airflow_db):
    from airflow.api_fastapi.app import create_app

    return TestClient(create_app())


@pytest.fixture()
def stored_pdf(test_home, monkeypatch):
    monkeypatch.setenv(LINK_SECRET_ENV, SECRET.decode())
    folder = test_home / "reports" / "monthly_executive"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "2026-10.pdf").write_bytes(b"%PDF-1.7 october")
    yield
    (folder / "2026-10.pdf").unlink()


def _url(expires_at, **changes):
    return "/kpi-history/shared/report.pdf?" + urlencode(
        {**{k: v[0] for k, v in parse_qs(signed_query(SECRET, "monthly", OCT, "", expires_at),
                                         keep_blank_values=True).items()}, **changes})


def test_the_plugin_opens_a_valid_link_without_a_login_and_refuses_the_others(api, stored_pdf):
    later = datetime.now(UTC).replace(tzinfo=None) + timedelta(days=1)
    opened = api.get(_url(later))  # no cookie, no token
    assert opened.status_code == 200, opened.text
    assert opened.content == b"%PDF-1.7 october" and opened.headers["content-type"] == "application/pdf"
    assert opened.headers["cache-control"] == "private, no-store"
    expired = api.get(_url(datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=1)))
    assert expired.status_code == 410 and "This link expired on" in expired.text and "%PDF" not in expired.text
    tampered = api.get(_url(later, period="2026-09-01"))
    assert tampered.status_code == 403 and "was changed" in tampered.text
    # the other routes still need the Airflow login
    assert api.get("/kpi-history/report.pdf?grain=monthly&period=2026-10-01").status_code == 401


def test_a_valid_link_to_a_file_no_longer_stored_says_so(api, stored_pdf, test_home):
    # other tests in the session render real months into the same home; this one was never rendered
    gone = test_home / "reports" / "monthly_executive" / "2019-03.pdf"
    gone.unlink(missing_ok=True)
    link = "/kpi-history/shared/report.pdf?" + signed_query(SECRET, "monthly", date(2019, 3, 1), "",
                                                            datetime.now(UTC).replace(tzinfo=None) + timedelta(days=1))
    missing = api.get(link)
    assert missing.status_code == 404 and "no longer stored" in missing.text
