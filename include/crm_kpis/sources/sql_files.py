"""SQL files (`include/sql/`) and their bound parameters: found per dialect, read, and put in the
form each driver binds.

Why one module: every SQL the product runs is a file with `:name` placeholders; the extracts, the
adapters' SELECTs, the DDL scripts and the benchmark's direct driver calls all read them the same way.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text

from crm_kpis.paths import SQL_DIR
from crm_kpis.sources.errors import SourceError


# --- SQL files --------------------------------------------------------------------------------
def sql_file(name: str, dialect: str) -> Path:
    """`crm/orders.sql`, or its per-dialect twin `crm/orders.postgresql.sql` when one exists."""
    base = SQL_DIR / name
    specific = base.with_name(f"{base.stem}.{dialect}{base.suffix}")
    path = specific if specific.exists() else base
    if not path.exists():
        raise SourceError(f"SQL file not found: {path}")
    return path


def load_sql(name: str, dialect: str) -> str:
    return sql_file(name, dialect).read_text(encoding="utf-8")


def _bind_value(value: Any, dialect: str) -> Any:
    """SQLite keeps timestamps as text: bind the same text form so comparisons are chronological."""
    if dialect != "sqlite":
        return value
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    return value


_PARAM = re.compile(r"(?<!:):(\w+)")


def pyformat(sql: str, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A SQL file's `:name` placeholders as the DB-API's `%(name)s`, and only the parameters it uses.

    For PyMySQL used directly (in the benchmark), where SQLAlchemy's `text()` does not translate
    them. A literal `%` is doubled, as pyformat needs.
    """
    return _PARAM.sub(r"%(\1)s", sql.replace("%", "%%")), {key: params[key] for key in _PARAM.findall(sql)}


def numbered(sql: str, params: dict[str, Any]) -> tuple[str, tuple[Any, ...]]:
    """A SQL file's `:name` placeholders as PostgreSQL's `$1, $2, …`, with the values in that order
    (a name used twice is one parameter)."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    return _PARAM.sub(number, sql), tuple(params[name] for name in names)


def bind_values(params: dict[str, Any], dialect: str) -> dict[str, Any]:
    return {key: _bind_value(value, dialect) for key, value in params.items()}


def script_statements(path: Path) -> list[str]:
    """The `;`-separated statements of a DDL file, without its `--` comment lines."""
    script = "\n".join(line for line in path.read_text(encoding="utf-8").splitlines()
                       if not line.strip().startswith("--"))
    return [s.strip() for s in script.split(";") if s.strip()]


def run_script(engine: Engine, path: Path) -> None:
    """Run a DDL file of `;`-separated statements in one transaction."""
    with engine.begin() as conn:
        for statement in script_statements(path):
            conn.execute(text(statement))


def without_comments(sql: str) -> str:
    """SQL without its `--` comments (a CTE's body must not end inside one)."""
    return "\n".join(line.split("--", 1)[0] for line in sql.splitlines()).strip()
