"""Properties that hold for every declared KPI, and agreement with the written catalogue."""

import math
import os
import re
from pathlib import Path

import pytest

from crm_kpis.kpis import REGISTRY
from crm_kpis.paths import PROJECT_DIR
from tests.unit.kpi_fixture import OCTOBER, evaluate, frames

ALL = sorted(REGISTRY)
#: Catalogue rates that are two flows of one period, and so may exceed 1 by definition.
FLOW_RATES = {"marketing.lead_conversion_rate", "marketing.email_list_growth_rate", "sales.growth_rate"}


def empty_frames():
    return {name: f.iloc[0:0] for name, f in frames().items()}


def is_sum_or_count(kpi_id: str) -> bool:
    """A plain sum or count keeps no denominator; a ratio or mean keeps one."""
    return evaluate(kpi_id)[("", "")].denominator is None


@pytest.mark.parametrize("kpi_id", ALL)
def test_empty_period_gives_zero_or_no_value(kpi_id):
    company = evaluate(kpi_id, data=empty_frames())[("", "")]
    if REGISTRY[kpi_id].compute.__module__.endswith("lifetime_value"):
        # a forecast needs a fitted model; with no customer there is none, so no value, and why
        assert company.value is None and company.note.startswith("undefined: 0 ")
    elif is_sum_or_count(kpi_id):
        assert company.value == 0  # nothing happened: zero, not unknown
    elif company.denominator == 0:
        assert company.value is None  # nothing to divide by: no value, never 0, inf or NaN
    else:  # e.g. calls per day over 31 days (0.0), or a derived index whose parts are undefined (None)
        assert company.value is None or math.isfinite(company.value)


@pytest.mark.parametrize("kpi_id", ALL)
def test_values_are_finite_and_ratios_keep_their_parts(kpi_id):
    for v in evaluate(kpi_id).values():
        assert v.value is None or math.isfinite(v.value)
        if v.denominator == 0:
            assert v.value is None, f"{kpi_id} {v.dimension}={v.member}: zero denominator must give no value"


@pytest.mark.parametrize("kpi_id", [k for k in ALL if REGISTRY[k].unit == "rate" and k not in FLOW_RATES])
def test_rates_are_fractions(kpi_id):
    for v in evaluate(kpi_id).values():
        assert v.value is None or 0.0 <= v.value <= 1.0


@pytest.mark.parametrize("kpi_id", [k for k in ALL if REGISTRY[k].breakdowns and is_sum_or_count(k)])
def test_breakdown_members_add_up_to_the_company_value(kpi_id):
    values = evaluate(kpi_id)
    total = values[("", "")].value
    for dimension in REGISTRY[kpi_id].breakdowns:
        members = [v.value for (d, _), v in values.items() if d == dimension]
        assert sum(members) == pytest.approx(total), f"{kpi_id} by {dimension}"


@pytest.mark.parametrize("kpi_id", ALL)
def test_row_order_does_not_matter(kpi_id):
    shuffled = {name: f.sample(frac=1.0, random_state=7).reset_index(drop=True) for name, f in frames().items()}
    a, b = evaluate(kpi_id), evaluate(kpi_id, data=shuffled)
    assert a.keys() == b.keys()
    for key in a:  # exactly equal: sums are correctly rounded (math.fsum), so order cannot show
        assert (b[key].value, b[key].numerator, b[key].denominator) == (a[key].value, a[key].numerator, a[key].denominator)


def test_daily_grain_skips_monthly_only_kpis():
    assert REGISTRY["sales.churn_rate"].applies_to("monthly")
    assert not REGISTRY["sales.churn_rate"].applies_to("daily")
    assert REGISTRY["sales.revenue"].applies_to("daily")
    assert OCTOBER.grain == "monthly"


# --- the declarations against the written catalogue -------------------------------------------
CATALOGUE = PROJECT_DIR.parent / "shared" / "design" / "kpi-catalogue.md"
#: the KPIs added since the design catalogue was written, in the same table form
ADDITIONS = PROJECT_DIR / "docs" / "kpi-catalogue-additions.md"
UNIT_WORDS = {"money": "money", "count": "count", "rate": "rate", "ratio": "ratio", "days": "days",
              "hours": "hours", "minutes": "minutes", "seconds": "seconds"}


def catalogue_rows(path: Path = CATALOGUE) -> dict[str, dict[str, str]]:
    rows = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        m = re.match(r"\|\s*`([a-z0-9_.]+)`\s*\|\s*(.+?)\s*\|\s*(.+)\s*\|\s*(.+?)\s*\|\s*(up|down|–)\s*\|\s*([DM])\s*\|$", line)
        if m:
            kpi_id, name, _formula, unit, better, grain = m.groups()
            rows[kpi_id] = {"name": name, "unit": unit, "better": better, "grain": grain}
    return rows


NO_CATALOGUE = pytest.mark.skipif(not CATALOGUE.exists() and not os.environ.get("CI"),
                                  reason="shared/design is not beside this checkout (never skipped in CI)")


@NO_CATALOGUE
def test_declarations_agree_with_the_catalogue():
    catalogue = catalogue_rows()
    assert len(catalogue) >= 60, "catalogue table not parsed"
    additions = catalogue_rows(ADDITIONS)
    assert len(additions) == 6 and not set(additions) & set(catalogue), "additions table not parsed or repeated"
    catalogue |= additions
    for kpi_id, d in REGISTRY.items():
        assert kpi_id in catalogue, f"{kpi_id} is declared but not in kpi-catalogue.md"
        row = catalogue[kpi_id]
        assert d.name == row["name"], kpi_id
        assert d.grain == row["grain"], kpi_id
        assert (d.better or "–") == row["better"], kpi_id
        expected_unit = row["unit"].split()[0]
        assert d.unit == UNIT_WORDS.get(expected_unit, expected_unit), kpi_id


@NO_CATALOGUE
def test_every_catalogue_kpi_is_declared():
    assert sorted((set(catalogue_rows()) | set(catalogue_rows(ADDITIONS))) - set(REGISTRY)) == []


@pytest.mark.parametrize("kpi_id", [k for k in ALL if REGISTRY[k].flow])
def test_flows_are_sums_of_the_period(kpi_id):
    """A flow's months add up to its year to date: it must be a sum or count of the period's
    events, stored without a denominator (a ratio or a stock declared a flow would give a wrong YTD)."""
    assert REGISTRY[kpi_id].unit in ("money", "count") and is_sum_or_count(kpi_id)
    assert "in period" in REGISTRY[kpi_id].formula
