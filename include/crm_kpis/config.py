"""The reports configuration file (`include/config/reports.yaml`): reports, recipients, variants,
targets, KPI alert rules, approval and delivery settings, read and checked in one place.

Why one module: the DAG files read the report timezone at parse time (the timetable needs it),
and the tasks read recipients and output folders at run time. Both must agree, so both read the
same file through the same function. Reading a small YAML file is cheap enough for parse time.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from crm_kpis.paths import INCLUDE_DIR
from crm_kpis.periods import GRAINS

DEFAULT_CONFIG_FILE = INCLUDE_DIR / "config" / "reports.yaml"
#: Early enough for any company's history; `history_start` in reports.yaml moves it.
DEFAULT_HISTORY_START = date(2000, 1, 1)


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


APPROVAL_WHEN = ("never", "warnings", "always")


#: The breakdowns a report variant can be filtered to (compute.DIMENSIONS; kept here so that the
#: DAG files, which read this module at parse time, need not import the computation).
VARIANT_DIMENSIONS = ("channel", "segment", "rep_team", "ticket_channel", "agent_team")
DIMENSION_TITLES = {
    "channel": "Channel", "segment": "Customer segment", "rep_team": "Sales team",
    "ticket_channel": "Ticket channel", "agent_team": "Support team", "stage": "Pipeline stage",
}
#: what the breakdown member "unknown" stands for, said where it is shown (rows without that value)
UNKNOWN_MEMBER_LABELS = {
    "channel": "no acquisition channel recorded", "segment": "no customer segment recorded",
    "rep_team": "no sales rep recorded", "ticket_channel": "no ticket channel recorded",
    "agent_team": "no support team recorded", "stage": "no pipeline stage recorded",
}
#: variant ids that name something else: the company-wide report ("") and test sends
RESERVED_VARIANT_IDS = ("", "all", "test")


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
    #: the earliest period computed; a run for an earlier one fails with that reason
    history_start: date = DEFAULT_HISTORY_START
    #: KPI alert rules (crm_kpis.report.kpi_alerts), sent after the gate, once per rule and period
    kpi_alerts: tuple[AlertRule, ...] = ()
    #: where rendered reports are written and read (crm_kpis.delivery.reports_store; the environment wins)
    reports_url: str | None = None
    reports_conn_id: str | None = None

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


def _as_tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return tuple(str(v) for v in value)


@lru_cache(maxsize=8)
def _load(path: str, mtime: float) -> Settings:
    raw = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    reports: dict[str, ReportConfig] = {}
    for report_id, spec in (raw.get("reports") or {}).items():
        if spec.get("grain") not in GRAINS:
            raise ValueError(f"{path}: report {report_id!r} needs grain daily or monthly")
        reports[report_id] = ReportConfig(
            report_id=report_id,
            title=spec.get("title", report_id),
            grain=spec["grain"],
            to=_as_tuple(spec.get("to")),
            cc=_as_tuple(spec.get("cc")),
            bcc=_as_tuple(spec.get("bcc")),
            reply_to=spec.get("reply_to"),
            from_email=spec.get("from_email"),
            headline=_as_tuple(spec.get("headline")),
            deliver_by_hours=_deliver_by(f"{path}: reports.{report_id}", spec.get("deliver_by_hours")),
            variants=_variants(f"{path}: reports.{report_id}.variants", spec.get("variants")),
            slack=_conn_id(f"{path}: reports.{report_id}.slack", spec.get("slack")),
            teams=_conn_id(f"{path}: reports.{report_id}.teams", spec.get("teams")),
            send_when=_send_when(f"{path}: reports.{report_id}.send_when", spec.get("send_when", "always")),
            approval=_approval(f"{path}: reports.{report_id}.approval", spec.get("approval")),
        )
    return Settings(
        timezone=raw.get("timezone", "UTC"),
        currency=raw.get("currency", "USD"),
        company=raw.get("company", "Example Corp"),
        reports=reports,
        targets=_targets(path, raw.get("targets") or {}),
        quality=raw.get("quality") or {},
        alerts_to=_as_tuple((raw.get("alerts") or {}).get("to")),
        history_start=_history_start(path, raw.get("history_start")),
        kpi_alerts=_kpi_alerts(f"{path}: kpi_alerts", raw.get("kpi_alerts")),
        reports_url=raw.get("reports_url"),
        reports_conn_id=_conn_id(f"{path}: reports_conn_id", raw.get("reports_conn_id")),
    )


def _variants(where: str, raw: Any) -> tuple[Variant, ...]:
    """`variants: [{dimension: segment, member: enterprise, to: [...]}, ...]`, each checked here, so
    that a typo fails the DAG's parse with its place instead of a send to nobody."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ValueError(f"{where}: a list of variants, e.g. [{{dimension: segment, member: enterprise, to: [...]}}]")
    out: list[Variant] = []
    for i, spec in enumerate(raw):
        at = f"{where}[{i}]"
        if not isinstance(spec, dict) or spec.get("dimension") not in VARIANT_DIMENSIONS or not spec.get("member"):
            raise ValueError(f"{at}: needs `dimension` (one of {', '.join(VARIANT_DIMENSIONS)}) and `member`")
        member = str(spec["member"])
        variant_id = str(spec.get("id") or re.sub(r"[^a-z0-9]+", "-", f"{spec['dimension']}-{member}".lower()).strip("-"))
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,79}", variant_id) or variant_id in RESERVED_VARIANT_IDS:
            raise ValueError(f"{at}: id {variant_id!r} must be lower-case letters, digits, - or _ "
                             f"and not one of {RESERVED_VARIANT_IDS[1:]}")
        if variant_id in {v.variant_id for v in out}:
            raise ValueError(f"{at}: id {variant_id!r} is used twice")
        to = _as_tuple(spec.get("to"))
        slack, teams = _conn_id(f"{at}.slack", spec.get("slack")), _conn_id(f"{at}.teams", spec.get("teams"))
        if not (to or slack or teams):
            raise ValueError(f"{at}: the variant {variant_id!r} needs recipients under `to` (or a `slack` or "
                             "`teams` connection)")
        out.append(Variant(variant_id, spec["dimension"], member, to, _as_tuple(spec.get("cc")),
                           _as_tuple(spec.get("bcc")), slack, teams))
    return tuple(out)


def _kpi_alerts(where: str, raw: Any) -> tuple[AlertRule, ...]:
    """`kpi_alerts: [{kpi: sales.revenue, grain: monthly, change_below: -5, to: [...]}, ...]`: one
    condition each (above, below, change_above, change_below, outside_usual), checked here."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ValueError(f"{where}: a list of rules, e.g. [{{kpi: sales.revenue, grain: monthly, change_below: -5, "
                         "to: [cfo@example.com]}}]")
    out: list[AlertRule] = []
    for i, spec in enumerate(raw):
        at = f"{where}[{i}]"
        kinds = [k for k in KINDS if isinstance(spec, dict) and k in spec]
        if not isinstance(spec, dict) or not spec.get("kpi") or spec.get("grain") not in GRAINS or len(kinds) != 1:
            raise ValueError(f"{at}: needs `kpi`, `grain` (daily or monthly) and one condition of {', '.join(KINDS)}")
        kind, condition = kinds[0], spec[kinds[0]]
        threshold, periods, mads = None, 12, 3.0
        if kind == "outside_usual":
            condition = condition or {}
            periods, mads = int(condition.get("periods", 12)), float(condition.get("mads", 3.0))
            if periods < 3 or mads <= 0:
                raise ValueError(f"{at}: outside_usual needs periods of 3 or more and mads above 0")
        elif isinstance(condition, bool) or not isinstance(condition, int | float):
            raise ValueError(f"{at}: {kind} needs a number, not {condition!r}")
        else:
            threshold = float(condition)
        against = spec.get("against", "previous")
        if against not in AGAINST:
            raise ValueError(f"{at}: against is one of {', '.join(AGAINST)}, not {against!r}")
        dimension, member = str(spec.get("dimension") or ""), str(spec.get("member") or "")
        if bool(dimension) != bool(member) or (dimension and dimension not in VARIANT_DIMENSIONS):
            raise ValueError(f"{at}: a member's rule needs both `dimension` (one of {', '.join(VARIANT_DIMENSIONS)}) "
                             "and `member`")
        default_id = "-".join(p for p in (spec["kpi"], member, kind) if p)
        rule_id = str(spec.get("id") or re.sub(r"[^a-z0-9]+", "-", default_id.lower()).strip("-"))
        if rule_id in {r.rule_id for r in out}:
            raise ValueError(f"{at}: id {rule_id!r} is used twice (give the rule an `id`)")
        to = _as_tuple(spec.get("to"))
        slack, teams = _conn_id(f"{at}.slack", spec.get("slack")), _conn_id(f"{at}.teams", spec.get("teams"))
        if not (to or slack or teams):
            raise ValueError(f"{at}: the rule {rule_id!r} needs owners under `to` (or a `slack` or `teams` connection)")
        out.append(AlertRule(rule_id, str(spec["kpi"]), spec["grain"], kind, threshold, against, periods, mads,
                             dimension, member, to, slack, teams))
    return tuple(out)


def _approval(where: str, raw: Any) -> Approval:
    if raw is None:
        return Approval()
    if not isinstance(raw, dict) or raw.get("when", "never") not in APPROVAL_WHEN \
            or raw.get("on_timeout", "reject") not in ("reject", "approve"):
        raise ValueError(f"{where}: {{when: {' | '.join(APPROVAL_WHEN)}, timeout_hours: 24, on_timeout: reject | approve}}")
    hours = raw.get("timeout_hours", 24)
    if isinstance(hours, bool) or not isinstance(hours, int | float) or hours <= 0:
        raise ValueError(f"{where}: timeout_hours must be a number of hours above 0, not {hours!r}")
    return Approval(raw.get("when", "never"), float(hours), raw.get("on_timeout", "reject"))


SEND_WHEN = ("always", "alert", "change")


def _send_when(where: str, raw: Any) -> str:
    if raw not in SEND_WHEN:
        raise ValueError(f"{where}: one of {', '.join(SEND_WHEN)}, not {raw!r}")
    return str(raw)


def _conn_id(where: str, raw: Any) -> str | None:
    """An Airflow connection id (the webhook's URL is a secret: it lives in the connection, never here)."""
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str) or not re.fullmatch(r"[A-Za-z0-9_.-]{1,250}", raw) or "://" in raw:
        raise ValueError(f"{where}: the id of an Airflow connection (e.g. slack_kpis), not {raw!r}; "
                         "the webhook URL goes into that connection")
    return raw


def _deliver_by(where: str, raw: Any) -> float | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float) or raw < 0:
        raise ValueError(f"{where}.deliver_by_hours must be a number of hours after the period's end "
                         f"(e.g. 6 for 06:00 the next day), not {raw!r}")
    return float(raw)


def _history_start(path: str, raw: Any) -> date:
    if raw is None:
        return DEFAULT_HISTORY_START
    try:
        value = raw if isinstance(raw, date) else date.fromisoformat(str(raw))
    except ValueError:
        raise ValueError(f"{path}: history_start must be a date such as 2015-01-01, not {raw!r}") from None
    if value.day != 1:
        raise ValueError(f"{path}: history_start must be the first day of a month, not {value}")
    return value


def _target(where: str, spec: Any) -> Target:
    if not isinstance(spec, dict) or not isinstance(spec.get("target"), int | float):
        raise ValueError(f"{where}: a target needs a number under `target`, e.g. {{target: 0.9, at_risk: 0.8}}")
    members = {
        (dimension, str(member)): _target(f"{where}.{dimension}.{member}", member_spec)
        for dimension, by_member in (spec.get("members") or {}).items()
        for member, member_spec in by_member.items()
    }
    at_risk = spec.get("at_risk")
    return Target(float(spec["target"]), None if at_risk is None else float(at_risk), members)


def _targets(path: str, raw: dict[str, Any]) -> dict[str, dict[str, Target]]:
    out: dict[str, dict[str, Target]] = {}
    for grain, by_kpi in raw.items():
        if grain not in GRAINS:
            raise ValueError(f"{path}: targets are grouped by grain (daily, monthly), not {grain!r}")
        out[grain] = {kpi_id: _target(f"{path}: targets.{grain}.{kpi_id}", spec) for kpi_id, spec in (by_kpi or {}).items()}
    return out


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

KINDS = ("above", "below", "change_above", "change_below", "outside_usual")
AGAINST = ("previous", "year_ago")


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
