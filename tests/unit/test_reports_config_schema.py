"""reports.yaml checked by its pydantic models: every problem at once, by its key path, with what was
written; typos refused; the JSON Schema editors read is the one the models give, and the shipped
file passes both."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date

import jsonschema
import yaml

from crm_kpis.config.schema import json_schema
from crm_kpis.config.settings import DEFAULT_CONFIG_FILE, SCHEMA_FILE, settings_from

MISTAKES = """
timezone: Europe/Berln
history_start: 2015-01-15
reports:
  monthly_executive:
    grain: monthly
    recipents: [ceo@example.com]
    deliver_by_hours: six
    variants:
      - {dimension: region, member: EMEA, to: [emea@example.com]}
      - {dimension: segment, member: smb}
    approval: {when: sometimes}
targets:
  weekly:
    sales.revenue: {target: 3}
  monthly:
    sales.revenue: {at_risk: 3}
kpi_alerts:
  - {kpi: sales.revenue, grain: monthly, above: 1, below: 0, to: [a@example.com]}
  - {kpi: sales.revenue, grain: monthly, above: 1, slack: "https://hooks.slack.com/services/x"}
"""


def _problems(text: str) -> list[str]:
    try:
        settings_from(yaml.safe_load(text), "reports.yaml")
    except ValueError as exc:
        head, *lines = str(exc).splitlines()
        assert head == f"reports.yaml: {len(lines)} problem(s) in the reports configuration:"
        return [line.strip() for line in lines]
    raise AssertionError("the file was accepted")


def test_every_problem_is_named_by_its_key_path_at_once():
    assert _problems(MISTAKES) == [
        "timezone: an IANA time zone such as Europe/Berlin, not 'Europe/Berln'",
        "history_start: the first day of a month, not 2015-01-15",
        "reports.monthly_executive.deliver_by_hours: Input should be a valid number (it says 'six')",
        "reports.monthly_executive.variants[0].dimension: Input should be 'channel', 'segment', 'rep_team', "
        "'ticket_channel' or 'agent_team' (it says 'region')",
        "reports.monthly_executive.variants[1]: the variant 'segment-smb' needs recipients under `to` "
        "(or a `slack` or `teams` connection)",
        "reports.monthly_executive.approval.when: Input should be 'never', 'warnings' or 'always' (it says 'sometimes')",
        "reports.monthly_executive.recipents: not a setting this file knows (a typo?)",
        "targets.weekly: Input should be 'daily' or 'monthly' (it says 'weekly')",
        "targets.monthly.sales.revenue.target: required, and missing",
        "kpi_alerts[0]: needs one condition of above, below, change_above, change_below, outside_usual, "
        "not 2 (above, below)",
        "kpi_alerts[1].slack: the id of an Airflow connection (e.g. slack_kpis), not "
        "'https://hooks.slack.com/services/x'; the webhook URL goes into that connection",
    ]


def test_a_mistyped_key_is_refused_not_ignored():
    """Before the models, `recipents:` was ignored and the report went to nobody."""
    assert _problems("reports:\n  m: {grain: monthly, recipents: [ceo@example.com]}\n") == [
        "reports.m.recipents: not a setting this file knows (a typo?)"]
    assert _problems("report:\n  m: {grain: monthly}\n") == ["report: not a setting this file knows (a typo?)"]


def test_the_forms_the_file_has_always_accepted():
    settings = settings_from(yaml.safe_load("""
        timezone:
        reports:
          m: {grain: monthly, to: "a@example.com, b@example.com", headline: sales.revenue,
              variants: [{dimension: rep_team, member: 2024, to: c@example.com}]}
        targets:
        kpi_alerts:
          - {kpi: sales.revenue, grain: monthly, outside_usual:, to: a@example.com}
    """))
    report = settings.reports["m"]
    assert settings.timezone == "UTC" and settings.targets == {} and report.title == "m"
    assert report.to == ("a@example.com", "b@example.com") and report.headline == ("sales.revenue",)
    assert [(v.variant_id, v.member) for v in report.variants] == [("rep-team-2024", "2024")]
    assert settings.history_start == date(2000, 1, 1) and settings.kpi_alerts[0].periods == 12


def test_the_checked_in_json_schema_is_the_models_and_the_shipped_file_passes_it():
    assert json.loads(SCHEMA_FILE.read_text(encoding="utf-8")) == json_schema(), \
        "run python -m crm_kpis.config schema"
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    shipped = yaml.safe_load(DEFAULT_CONFIG_FILE.read_text(encoding="utf-8"))
    shipped["history_start"] = shipped["history_start"].isoformat()  # an editor sees the text
    jsonschema.validate(shipped, schema)
    assert DEFAULT_CONFIG_FILE.read_text(encoding="utf-8").startswith(
        "# yaml-language-server: $schema=reports.schema.json\n")
    typo = {"reports": {"m": {"grain": "monthly", "recipents": ["ceo@example.com"]}}}
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(typo))
    assert [e.message for e in errors] == ["Additional properties are not allowed ('recipents' was unexpected)"]


def test_the_check_command(tmp_path):
    bad = tmp_path / "reports.yaml"
    bad.write_text("reports:\n  m: {grain: weekly, to: a@example.com}\n")
    run = subprocess.run([sys.executable, "-m", "crm_kpis.config", "check", str(bad)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1
    assert "reports.m.grain: Input should be 'daily' or 'monthly' (it says 'weekly')" in run.stdout
    ok = subprocess.run([sys.executable, "-m", "crm_kpis.config", "check"], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and "ok (2 reports, 3 KPI alert rules)" in ok.stdout
    stale = subprocess.run([sys.executable, "-m", "crm_kpis.config", "schema", "--check"],
                           capture_output=True, text=True, timeout=120)
    assert stale.returncode == 0 and "up to date" in stale.stdout
