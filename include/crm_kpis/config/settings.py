"""The settings the product reads from the reports configuration (`include/config/reports.yaml`):
reports, recipients, variants, targets, KPI alert rules, approval and delivery settings. The file is
checked by its pydantic models first (crm_kpis.config.schema), then turned into these values.

Why one module: the DAG files read the report timezone at parse time (the timetable needs it),
and the tasks read recipients and output folders at run time. Both must agree, so both read the
same file through the same function. Reading a small YAML file is cheap enough for parse time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from crm_kpis.config.schema import (
    DEFAULT_HISTORY_START,
    AlertRuleSpec,
    OutsideUsualSpec,
    ReportSpec,
    TargetSpec,
    check,
)
from crm_kpis.paths import INCLUDE_DIR
from crm_kpis.periods import GRAINS

DEFAULT_CONFIG_FILE = INCLUDE_DIR / "config" / "reports.yaml"
#: the JSON Schema of the file, for editors (written by `python -m crm_kpis.config schema`)
SCHEMA_FILE = INCLUDE_DIR / "config" / "reports.schema.json"


def dag_id_for(grain: str) -> str:
    """The DAG that computes a grain (the history view links each period to its run there)."""
    if grain not in GRAINS:
        raise ValueError(f"grain must be one of {GRAINS}, not {grain!r}")
    return f"crm_kpis_{grain}"


def ui_base_url() -> str:
    """Where the Airflow UI answers (`[api] base_url`), for the links in alerts, posts and requests."""
    from airflow.configuration import conf  # only when a link is made: not at the DAGs' parse

    return conf.get("api", "base_url", fallback="http://localhost:8080").rstrip("/")


@dataclass(frozen=True)
class Approval:
    """Whether a person approves a report before it is sent (crm_kpis.orchestration.approval): `always`, only
    when the quality gate raised `warnings`, or `never`; unanswered for `timeout_hours`, the
    `on_timeout` choice is taken (reject: nothing is sent)."""

    when: str = "never"
    timeout_hours: float = 24.0
    on_timeout: str = "reject"




@dataclass(frozen=True)
class Dimension:
    """A breakdown as the reports show it. `peers`: its members compete on the same terms (teams,
    segments, channels), so a breakdown table marks the best and worst of a column; the stages of
    one pipeline are steps, not rivals: the longest stage is not the "worst"."""

    title: str
    unknown: str  # what the member "unknown" stands for (rows without that value)
    peers: bool = True


DIMENSION_DECLARATIONS: dict[str, Dimension] = {
    "channel": Dimension("Channel", "no acquisition channel recorded"),
    "segment": Dimension("Customer segment", "no customer segment recorded"),
    "rep_team": Dimension("Sales team", "no sales rep recorded"),
    "ticket_channel": Dimension("Ticket channel", "no ticket channel recorded"),
    "agent_team": Dimension("Support team", "no support team recorded"),
    "stage": Dimension("Pipeline stage", "no pipeline stage recorded", peers=False),
}
DIMENSION_TITLES = {name: d.title for name, d in DIMENSION_DECLARATIONS.items()}
UNKNOWN_MEMBER_LABELS = {name: d.unknown for name, d in DIMENSION_DECLARATIONS.items()}


@dataclass(frozen=True)
class Variant:
    """A report filtered to one breakdown member (a sales team, a segment), with its own recipients."""

    variant_id: str
    dimension: str
    member: str
    to: tuple[str, ...]
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()
    #: Airflow connection ids of the chat channels this edition is also posted to (None: not)
    slack: str | None = None
    teams: str | None = None

    @property
    def label(self) -> str:
        """How the title and subject name it: "Enterprise (customer segment)"."""
        member = self.member.replace("_", " ")
        return f"{member[:1].upper()}{member[1:]} ({DIMENSION_TITLES.get(self.dimension, self.dimension).lower()})"


@dataclass(frozen=True)
class ReportConfig:
    """One scheduled report: who gets it and how it is labelled.

    With `variants`, one run also renders and sends an edition per variant (`editions`): the same
    report filtered to that member, to the variant's recipients, delivered exactly once like the
    company-wide one, under its own delivery key.
    """

    report_id: str
    title: str
    grain: str
    to: tuple[str, ...]
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()
    reply_to: str | None = None
    from_email: str | None = None
    headline: tuple[str, ...] = ()  # KPI ids shown first, in the email body and on page one
    #: hours after the period's end by which the report must be delivered, else ops are alerted
    #: (Airflow's Deadline Alerts, crm_kpis.orchestration.deadlines); None: no deadline
    deliver_by_hours: float | None = None
    #: days the PDF link sent to readers opens without an Airflow login (crm_kpis.delivery.shared_links)
    link_days: float = 30.0
    #: a KPI on fewer answers, tickets or deals (its denominator) never leads What changed
    min_sample: int = 20
    #: the PDF's appendix: "compact" (formulas in two columns), "full" (descriptions, ids, holdout) or "none"
    appendix: str = "compact"
    variants: tuple[Variant, ...] = ()
    #: set on an edition of one variant (see `editions`); None on the company-wide report
    variant: Variant | None = None
    #: chat channels, by Airflow connection id: a Slack incoming webhook (connection type
    #: slackwebhook) and a Microsoft Teams Workflows webhook (connection type http); None: not posted
    slack: str | None = None
    teams: str | None = None
    #: always (default); alert: only when a KPI alert of the report's grain fired for the period;
    #: change: only when "What changed" has a mover
    send_when: str = "always"
    approval: Approval = field(default_factory=Approval)
    #: a source that lacks a table or column this run: hold (for approval), send (saying so) or stop
    on_broken_source: str = "hold"

    @property
    def channels(self) -> tuple[tuple[str, str], ...]:
        """(channel, connection id) of the chat channels this edition is posted to."""
        return tuple((name, conn) for name, conn in (("slack", self.slack), ("teams", self.teams)) if conn)

    @property
    def edition_id(self) -> str:
        """"" for the company-wide report, else the variant's id (delivery key, file names)."""
        return self.variant.variant_id if self.variant else ""

    @property
    def edition_title(self) -> str:
        return f"{self.title} · {self.variant.label}" if self.variant else self.title

    def editions(self) -> tuple[ReportConfig, ...]:
        """The company-wide report, then one edition per variant, each with its own recipients."""
        return (self, *(replace(self, to=v.to, cc=v.cc, bcc=v.bcc, slack=v.slack, teams=v.teams, variants=(), variant=v)
                        for v in self.variants))

    def edition(self, edition_id: str) -> ReportConfig:
        for edition in self.editions():
            if edition.edition_id == edition_id:
                return edition
        known = ", ".join(repr(e.edition_id) for e in self.editions())
        raise KeyError(f"report {self.report_id} has no variant {edition_id!r} (its editions: {known})")


@dataclass(frozen=True)
class Target:
    """A KPI's target for one grain; `at_risk` is the worst value still called "at risk"."""

    target: float
    at_risk: float | None = None
    members: dict[tuple[str, str], Target] = field(default_factory=dict)


@dataclass(frozen=True)
class Settings:
    timezone: str
    currency: str
    company: str
    reports: dict[str, ReportConfig] = field(default_factory=dict)
    targets: dict[str, dict[str, Target]] = field(default_factory=dict)  # grain -> kpi id -> target
    quality: dict[str, Any] = field(default_factory=dict)  # the quality gate's thresholds (crm_kpis.quality.gate)
    alerts_to: tuple[str, ...] = ()  # who is emailed when a task fails for good
    #: chat channels the alerts are also posted to: (channel, connection id), e.g. ("slack", "slack_ops")
    alerts_chat: tuple[tuple[str, str], ...] = ()
    #: the earliest period computed; a run for an earlier one fails with that reason
    history_start: date = DEFAULT_HISTORY_START
    #: KPI alert rules (crm_kpis.report.kpi_alerts), sent after the gate, once per rule and period
    kpi_alerts: tuple[AlertRule, ...] = ()
    #: where rendered reports are written and read (crm_kpis.delivery.reports_store; the environment wins)
    reports_url: str | None = None
    reports_conn_id: str | None = None

    @property
    def alerted(self) -> bool:
        """Whether anyone is told of failures (by email or in a chat channel)."""
        return bool(self.alerts_to or self.alerts_chat)

    def target_for(self, grain: str, kpi_id: str, dimension: str = "", member: str = "") -> Target | None:
        target = self.targets.get(grain, {}).get(kpi_id)
        if target is None or not dimension:
            return target
        return target.members.get((dimension, member))

    def report_for_grain(self, grain: str) -> ReportConfig:
        for report in self.reports.values():
            if report.grain == grain:
                return report
        raise KeyError(f"no report with grain {grain!r} in the reports configuration")


def config_file() -> Path:
    return Path(os.environ.get("CRM_KPIS_CONFIG", DEFAULT_CONFIG_FILE))


@lru_cache(maxsize=8)
def _load(path: str, mtime: float) -> Settings:
    """The file at `path` checked and turned into the settings (cached per modification time)."""
    return settings_from(yaml.safe_load(Path(path).read_text(encoding="utf-8")), path)


def settings_from(raw: Any, where: str = "reports.yaml") -> Settings:
    """A reports configuration's content checked (crm_kpis.config.schema) and turned into the settings;
    a ValueError naming every problem by its key path (prefixed with `where`) otherwise."""
    spec = check(raw, where)
    return Settings(
        timezone=spec.timezone, currency=spec.currency, company=spec.company,
        reports={report_id: _report(report_id, r) for report_id, r in spec.reports.items()},
        targets={grain: {kpi_id: _target(t) for kpi_id, t in by_kpi.items()} for grain, by_kpi in spec.targets.items()},
        quality=dict(spec.quality), alerts_to=spec.alerts.to, history_start=spec.history_start,
        alerts_chat=tuple((name, conn) for name, conn in (("slack", spec.alerts.slack), ("teams", spec.alerts.teams))
                          if conn),
        kpi_alerts=tuple(_alert_rule(r) for r in spec.kpi_alerts),
        reports_url=spec.reports_url, reports_conn_id=spec.reports_conn_id,
    )


def _report(report_id: str, spec: ReportSpec) -> ReportConfig:
    return ReportConfig(
        report_id=report_id, title=spec.title or report_id, grain=spec.grain, to=spec.to, cc=spec.cc, bcc=spec.bcc,
        reply_to=spec.reply_to, from_email=spec.from_email, headline=spec.headline,
        deliver_by_hours=spec.deliver_by_hours,
        link_days=spec.link_days, min_sample=spec.min_sample, appendix=spec.appendix,
        variants=tuple(Variant(v.variant_id, v.dimension, v.member, v.to, v.cc, v.bcc, v.slack, v.teams)
                       for v in spec.variants),
        slack=spec.slack, teams=spec.teams, send_when=spec.send_when,
        approval=Approval(spec.approval.when, spec.approval.timeout_hours, spec.approval.on_timeout),
        on_broken_source=spec.on_broken_source,
    )


def _alert_rule(spec: AlertRuleSpec) -> AlertRule:
    usual = spec.outside_usual or OutsideUsualSpec()
    threshold = None if spec.kind == "outside_usual" else getattr(spec, spec.kind)
    return AlertRule(spec.rule_id, spec.kpi, spec.grain, spec.kind, threshold, spec.against, usual.periods, usual.mads,
                     spec.dimension or "", spec.member or "", spec.to, spec.slack, spec.teams)


def _target(spec: TargetSpec) -> Target:
    members = {(dimension, member): _target(member_spec)
               for dimension, by_member in spec.members.items() for member, member_spec in by_member.items()}
    return Target(spec.target, spec.at_risk, members)


def load_settings() -> Settings:
    """The settings from the config file; `CRM_KPIS_TIMEZONE` overrides the report timezone."""
    path = config_file()
    if not path.exists():
        raise FileNotFoundError(f"reports configuration not found: {path} (set CRM_KPIS_CONFIG)")
    settings = _load(str(path), path.stat().st_mtime)
    tz = os.environ.get("CRM_KPIS_TIMEZONE")
    if tz:
        settings = replace(settings, timezone=tz)
    return settings



@dataclass(frozen=True)
class AlertRule:
    """One KPI alert rule as reports.yaml declares it; crm_kpis.report.kpi_alerts judges a period by it."""

    rule_id: str
    kpi_id: str
    grain: str
    kind: str
    threshold: float | None = None  # above/below: the value; change_*: % (pp for rates, pts for scores)
    against: str = "previous"  # change_*: the previous period or the same period a year earlier
    periods: int = 12  # outside_usual: the history it is judged against
    mads: float = 3.0  # outside_usual: how many robust deviations from the median
    dimension: str = ""
    member: str = ""
    to: tuple[str, ...] = ()
    slack: str | None = None
    teams: str | None = None
