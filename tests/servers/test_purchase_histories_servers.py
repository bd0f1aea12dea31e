"""The hand-made purchase histories (tests/integration/test_purchase_histories.py) on PostgreSQL
and MariaDB: the window function, the NULL handling, DISTINCT and the holdout buckets of
crm/purchase_histories.sql must give the same rows on every engine the CRM may live on."""

from __future__ import annotations

import pytest

from tests.integration.test_purchase_histories import check_hand_made


@pytest.mark.parametrize("server", ["postgres", "mariadb"])
def test_hand_made_histories_on_server(server: str, request: pytest.FixtureRequest,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    databases = request.getfixturevalue(server)
    check_hand_made(databases.create(f"histories_{server}"), monkeypatch)
