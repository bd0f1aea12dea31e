"""`make airflow` runs as many tasks at once as the machine can carry, not Airflow's default 32
(its LocalExecutor forks one process per slot when it starts)."""

from __future__ import annotations

from crm_kpis.tools.local_airflow import standalone_env, task_slots


def test_two_slots_a_core_and_never_fewer_than_a_runs_three_areas_and_one_more():
    assert [task_slots(c) for c in (1, 2, 3, 8, 16)] == [4, 4, 6, 16, 32]


def test_the_slots_are_the_machines_unless_the_environment_says_otherwise(monkeypatch):
    monkeypatch.delenv("AIRFLOW__CORE__PARALLELISM", raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert standalone_env(8080)["AIRFLOW__CORE__PARALLELISM"] == "4"
    monkeypatch.setenv("AIRFLOW__CORE__PARALLELISM", "12")
    assert standalone_env(8080)["AIRFLOW__CORE__PARALLELISM"] == "12"
