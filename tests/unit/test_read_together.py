"""Extracts run as one statement (crm_kpis.sources.read_together): the statement is built from each
extract's own SQL file, so its columns and CTEs must be read off those files exactly."""

from __future__ import annotations

import pytest

from crm_kpis.sources.extracts import EXTRACTS
from crm_kpis.sources.read_together import PART, combined_sql, output_columns, split_with
from crm_kpis.sources.sql_files import load_sql

TICKETS = ("tickets_created", "tickets_first_response", "tickets_open", "tickets_resolved")


def test_output_columns_are_the_outermost_select_list_s_names():
    sql = "WITH w AS (SELECT a FROM x) SELECT t.id, COALESCE(m.n, 0) AS n, CASE WHEN a THEN 1 END AS k, b FROM w t"
    assert output_columns(sql) == ["id", "n", "k", "b"]
    assert output_columns("-- a comment, FROM here\nSELECT t.a AS x FROM t") == ["x"]


def test_a_query_s_own_ctes_are_split_off_with_their_bodies():
    ctes, main = split_with("WITH a AS (SELECT (1) AS x), b AS (\n SELECT x FROM a\n) SELECT x FROM b")
    assert ctes == [("a", "SELECT (1) AS x"), ("b", "SELECT x FROM a")] and main == "SELECT x FROM b"
    assert split_with("SELECT 1 AS x FROM t") == ([], "SELECT 1 AS x FROM t")


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql", "mysql"])
def test_the_combined_statement_has_every_extract_s_columns_in_one_order(dialect):
    sql = combined_sql(TICKETS, dialect)
    every = list(dict.fromkeys(c for n in TICKETS for c in output_columns(load_sql(EXTRACTS[n].sql, dialect))))
    branches = sql.split("\nUNION ALL\n")
    assert len(branches) == 4 and sql.count("resolved AS (") == 1  # the resolved extract's own CTE, hoisted
    for name, branch in zip(TICKETS, branches, strict=True):
        select = branch.rsplit("\nSELECT ", 1)[-1] if branch.startswith("WITH") else branch.removeprefix("SELECT ")
        assert select.startswith(f"'{name}' AS {PART}, ")
        assert output_columns("SELECT " + select) == [PART, *every]


def test_two_extracts_with_a_cte_of_the_same_name_are_refused(monkeypatch):
    from crm_kpis.sources import read_together

    monkeypatch.setattr(read_together, "load_sql", lambda name, dialect: "WITH w AS (SELECT 1 AS x) SELECT x FROM w")
    with pytest.raises(ValueError, match="its CTE w has the name of another extract's"):
        combined_sql(("tickets_created", "tickets_open"), "postgresql")
