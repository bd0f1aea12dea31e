"""Environment for running Airflow locally on the embedded default (demo, tests, `make airflow`).

Why a module: Airflow reads its configuration when it is first imported, so these variables must
be set before any `airflow` import; the demo runner and the tests call `configure()` first.
Values already set in the environment win, so a user can point at other folders or databases.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from crm_kpis.config import PROJECT_DIR, var_dir


def configure(home: Path | None = None) -> Path:
    airflow_home = Path(os.environ.get("AIRFLOW_HOME", home or var_dir() / "airflow")).resolve()
    airflow_home.mkdir(parents=True, exist_ok=True)
    defaults = {
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_DIR / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_DIR / "plugins"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home / 'airflow.db'}",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": os.environ.get("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING"),
    }
    for key, value in defaults.items():
        os.environ.setdefault(key, value)
    return airflow_home


def migrate() -> None:
    """Create or upgrade Airflow's metadata database (dag.test needs it)."""
    result = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
