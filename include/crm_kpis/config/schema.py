"""`reports.yaml` as pydantic models: what the file may say, checked key by key.

Why pydantic: the file is written by hand by whoever deploys the product, and read at every DAG
parse. A typo (`recipents:`), a wrong type (`deliver_by_hours: six`) or a value outside its set
(`dimension: region`) must fail with the key's whole path and what is allowed, never be ignored.
The same models give the JSON Schema editors use to complete and check the file
(`include/config/reports.schema.json`, written by `python -m crm_kpis.config schema`).

The models describe the file only; `crm_kpis.config.settings` turns a checked file into the values
the rest of the product reads.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

GRAIN = Literal["daily", "monthly"]
#: The breakdowns a report variant or an alert can be filtered to (compute.DIMENSIONS; kept here so
#: that the DAG files, which read the configuration at parse time, need not import the computation).
VARIANT_DIMENSIONS = ("channel", "segment", "rep_team", "ticket_channel", "agent_team")
DIMENSION = Literal["channel", "segment", "rep_team", "ticket_channel", "agent_team"]
KINDS = ("above", "below", "change_above", "change_below", "outside_usual")
AGAINST = ("previous", "year_ago")
APPROVAL_WHEN = ("never", "warnings", "always")
SEND_WHEN = ("always", "alert", "change")
#: variant ids that name something else: the company-wide report ("") and test sends
RESERVED_VARIANT_IDS = ("", "all", "test")
DEFAULT_HISTORY_START = date(2000, 1, 1)


def _listed(value: Any) -> Any:
    """`to: a@x.com, b@x.com` as well as `to: [a@x.com, b@x.com]`."""
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


def _connection_id(value: str | None) -> str | None:
    """An Airflow connection id (a webhook's URL is a secret: it lives in the connection, never here)."""
    if value in (None, ""):
        return None
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,250}", value) or "://" in value:
        raise ValueError(f"the id of an Airflow connection (e.g. slack_kpis), not {value!r}; "
                         "the webhook URL goes into that connection")
    return value


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"an IANA time zone such as Europe/Berlin, not {value!r}") from None
    return value


def _first_of_month(value: date) -> date:
    if value.day != 1:
        raise ValueError(f"the first day of a month, not {value}")
    return value


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


Addresses = Annotated[tuple[str, ...], BeforeValidator(_listed),
                      Field(description="email addresses: a list, or one string separated by commas")]
ConnectionId = Annotated[str | None, AfterValidator(_connection_id),
                         Field(description="the id of an Airflow connection (the webhook URL lives there)")]
#: a number written as a number: `6`, `0.9`; not `"6"`, not `true`
Number = Annotated[float, Field(strict=True)]
Label = Annotated[str, BeforeValidator(lambda v: str(v) if isinstance(v, int | float) else v)]


class Spec(BaseModel):
    """Every part of the file: unknown keys are errors (a typo must not be ignored)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ApprovalSpec(Spec):
    """Whether a person approves the report before it is sent."""

    #: `warnings` by default: when the quality gate doubts the period (a magnitude far from its
    #: history, rows missing or repeated), a person decides before executives read it
    when: Literal["never", "warnings", "always"] = "warnings"
    timeout_hours: Annotated[Number, Field(gt=0)] = 24.0
    on_timeout: Literal["reject", "approve"] = "reject"


class VariantSpec(Spec):
    """The report filtered to one breakdown member, with its own recipients."""

    id: str | None = Field(None, description="names the edition in file names (default: dimension-member)")
    dimension: DIMENSION
    member: Label
    to: Addresses = ()
    cc: Addresses = ()
    bcc: Addresses = ()
    slack: ConnectionId = None
    teams: ConnectionId = None

    @property
    def variant_id(self) -> str:
        return self.id or _slug(f"{self.dimension}-{self.member}")

    @model_validator(mode="after")
    def _named_and_addressed(self) -> VariantSpec:
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,79}", self.variant_id) or self.variant_id in RESERVED_VARIANT_IDS:
            raise ValueError(f"id {self.variant_id!r} must be lower-case letters, digits, - or _ "
                             f"and not one of {RESERVED_VARIANT_IDS[1:]}")
        if not (self.to or self.slack or self.teams):
            raise ValueError(f"the variant {self.variant_id!r} needs recipients under `to` (or a `slack` or "
                             "`teams` connection)")
        return self


class ReportSpec(Spec):
    """One scheduled report: its grain, recipients, headline KPIs, channels and delivery rules."""

    title: str | None = Field(None, description="default: the report's id")
    grain: GRAIN
    to: Addresses = ()
    cc: Addresses = ()
    bcc: Addresses = ()
    reply_to: str | None = None
    from_email: str | None = None
    headline: Annotated[tuple[str, ...], BeforeValidator(_listed)] = ()
    deliver_by_hours: Annotated[Number | None, Field(ge=0, description=(
        "hours after the period's end by which the report must be delivered (6: 06:00 the next day)"))] = None
    variants: tuple[VariantSpec, ...] = ()
    slack: ConnectionId = None
    teams: ConnectionId = None
    link_days: Annotated[Number, Field(gt=0, le=366, description=(
        "how long the PDF link in the email, the chat posts and the approval request opens without an "
        "Airflow login (crm_kpis.delivery.shared_links)"))] = 30
    min_sample: Annotated[int, Field(strict=True, ge=0, description=(
        "a KPI computed on fewer answers, tickets or deals than this (its denominator), in the period "
        "or the one before, never leads What changed or the subject, and shows its sample"))] = 20
    appendix: Literal["compact", "full", "none"] = Field("compact", description=(
        "the PDF's appendix: compact (each KPI's formula in two columns, the models' fits without their "
        "holdout chart), full (with descriptions, KPI ids and the holdout check), or none"))
    send_when: Literal["always", "alert", "change"] = "always"
    approval: ApprovalSpec = ApprovalSpec()
    on_broken_source: Literal["hold", "send", "stop"] = Field("hold", description=(
        "a source lacks a table or column this run (its KPIs are n/a): hold the report for approval, "
        "send it saying so in its subject and first lines, or stop the run before anything is published"))

    @model_validator(mode="after")
    def _variant_ids_unique(self) -> ReportSpec:
        ids = [v.variant_id for v in self.variants]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"variant id {twice[0]!r} is used twice")
        return self


class OutsideUsualSpec(Spec):
    periods: Annotated[int, Field(strict=True, ge=3)] = 12
    mads: Annotated[Number, Field(gt=0)] = 3.0


class AlertRuleSpec(Spec):
    """A KPI alert: one KPI at one grain, one condition, its owners."""

    id: str | None = Field(None, description="default: kpi-member-condition")
    kpi: str
    grain: GRAIN
    above: Number | None = None
    below: Number | None = None
    change_above: Number | None = Field(None, description="% for amounts, pp for rates, pts for scores")
    change_below: Number | None = Field(None, description="% for amounts, pp for rates, pts for scores")
    outside_usual: OutsideUsualSpec | None = None
    against: Literal["previous", "year_ago"] = "previous"
    dimension: DIMENSION | None = None
    member: Label | None = None
    to: Addresses = ()
    slack: ConnectionId = None
    teams: ConnectionId = None

    @property
    def kind(self) -> str:
        return next(k for k in KINDS if k in self.model_fields_set)

    @property
    def rule_id(self) -> str:
        return self.id or _slug("-".join(p for p in (self.kpi, self.member or "", self.kind) if p))

    @model_validator(mode="after")
    def _one_condition_and_owners(self) -> AlertRuleSpec:
        conditions = [k for k in KINDS if k in self.model_fields_set]
        if len(conditions) != 1:
            raise ValueError(f"needs one condition of {', '.join(KINDS)}"
                             + (f", not {len(conditions)} ({', '.join(conditions)})" if conditions else ""))
        if conditions[0] != "outside_usual" and getattr(self, conditions[0]) is None:
            raise ValueError(f"{conditions[0]} needs a number")
        if bool(self.dimension) != bool(self.member):
            raise ValueError(f"a member's rule needs both `dimension` (one of {', '.join(VARIANT_DIMENSIONS)}) "
                             "and `member`")
        if not (self.to or self.slack or self.teams):
            raise ValueError(f"the rule {self.rule_id!r} needs owners under `to` (or a `slack` or `teams` connection)")
        return self


class TargetSpec(Spec):
    """A KPI's target; `at_risk` is the worst value still called "at risk"."""

    target: Number
    at_risk: Number | None = None
    members: dict[str, dict[Label, TargetSpec]] = Field(
        default_factory=dict, description="per breakdown, per member: its own target")


class AlertsSpec(Spec):
    to: Addresses = Field((), description="who is emailed when a task fails for good, or a report is late")
    slack: ConnectionId = Field(None, description="a Slack webhook connection the alerts are also posted to "
                                                  "(they arrive when the mail server is what failed)")
    teams: ConnectionId = Field(None, description="a Microsoft Teams Workflows webhook connection the alerts "
                                                  "are also posted to")


class ReportsFile(Spec):
    """The reports configuration (`include/config/reports.yaml`, or the file `CRM_KPIS_CONFIG` names)."""

    timezone: Annotated[str, AfterValidator(_zone)] = "UTC"
    currency: str = "USD"
    company: str = "Example Corp"
    history_start: Annotated[date, AfterValidator(_first_of_month)] = DEFAULT_HISTORY_START
    reports: dict[str, ReportSpec] = Field(default_factory=dict)
    targets: dict[GRAIN, dict[str, TargetSpec]] = Field(default_factory=dict)
    quality: dict[str, Any] = Field(default_factory=dict,
                                    description="the quality gate's thresholds (crm_kpis.quality.gate checks the keys)")
    alerts: AlertsSpec = AlertsSpec()
    kpi_alerts: tuple[AlertRuleSpec, ...] = ()
    reports_url: str | None = None
    reports_conn_id: ConnectionId = None

    @model_validator(mode="before")
    @classmethod
    def _empty_sections(cls, raw: Any) -> Any:
        """`targets:` or `reports:` left empty in YAML is None: read as nothing configured."""
        if isinstance(raw, dict):
            return {k: v for k, v in raw.items() if v is not None or k in ("reports_url", "reports_conn_id")}
        return raw

    @model_validator(mode="after")
    def _rule_ids_unique(self) -> ReportsFile:
        ids = [r.rule_id for r in self.kpi_alerts]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"kpi_alerts: id {twice[0]!r} is used twice (give the rule an `id`)")
        return self


def _where(loc: tuple[int | str, ...]) -> str:
    """`reports.monthly.variants[0].dimension`: the key path as the file reads."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif "[" in str(part) or str(part).startswith(("function-", "model-")):
            continue  # pydantic's names for a validator or a union member, not keys of the file
        else:
            out += f".{part}" if out else str(part)
    return out or "(the file)"


def problems(error: ValidationError) -> list[str]:
    """Each problem as one line: the key path, what is wrong, what was written."""
    lines = []
    for item in error.errors(include_url=False):
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            message = "not a setting this file knows (a typo?)"
        elif item["type"] == "missing":
            message = "required, and missing"
        written = item.get("input")
        shown = "" if item["type"] in ("missing", "value_error") or isinstance(written, dict | list) else \
            f" (it says {written!r})"
        lines.append(f"{_where(item['loc'])}: {message}{shown}")
    return lines


def check(raw: Any, path: str) -> ReportsFile:
    """The file's content checked; a ValueError naming every problem by its key path otherwise."""
    try:
        return ReportsFile.model_validate(raw if raw is not None else {})
    except ValidationError as exc:
        found = problems(exc)
        raise ValueError(f"{path}: {len(found)} problem(s) in the reports configuration:\n  "
                         + "\n  ".join(found)) from None


def json_schema() -> dict[str, Any]:
    """The JSON Schema of reports.yaml, for editors (YAML language servers read JSON Schema)."""
    schema = ReportsFile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "CRM KPIs reports configuration (reports.yaml)"
    return schema
