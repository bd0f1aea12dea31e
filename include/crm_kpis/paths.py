"""Where the project's files are: the SQL and template folders beside the package, and the
embedded default's working folder (`var/`, or `CRM_KPIS_HOME`).

Why its own module: every layer needs a path (the sources their SQL files, the report its templates,
the delivery its outbox), and none of them should have to import the reports configuration for it.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
INCLUDE_DIR = PACKAGE_DIR.parent
PROJECT_DIR = INCLUDE_DIR.parent
SQL_DIR = INCLUDE_DIR / "sql"
TEMPLATES_DIR = INCLUDE_DIR / "templates"


def var_dir() -> Path:
    """Where the embedded default keeps its files (SQLite databases, the local reports folder, outbox).

    `CRM_KPIS_HOME` moves it, e.g. to a volume in a container; the default is `var/` in the project.
    """
    return Path(os.environ.get("CRM_KPIS_HOME", PROJECT_DIR / "var")).resolve()


def outbox_dir() -> Path:
    return var_dir() / "outbox"
