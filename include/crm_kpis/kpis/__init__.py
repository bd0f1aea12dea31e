"""The KPI catalogue as code: importing this package registers every KPI declaration."""

from crm_kpis.kpis import marketing, operations, sales  # noqa: F401, I001 - registers the KPIs
from crm_kpis.kpis import lifetime_value  # noqa: F401, I001 - after sales: its KPIs follow them
from crm_kpis.kpis.base import AREAS, REGISTRY, KpiDef, KpiValue


def kpis_for(area: str, grain: str) -> list[KpiDef]:
    """The KPIs of one area that apply to a grain, in declaration order."""
    if area not in AREAS:
        raise ValueError(f"area must be one of {AREAS}, not {area!r}")
    return [k for k in REGISTRY.values() if k.area == area and k.applies_to(grain)]


__all__ = ["AREAS", "REGISTRY", "KpiDef", "KpiValue", "kpis_for"]
