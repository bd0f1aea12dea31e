"""The hand-made cross-sell / up-sell set (tests/integration/test_buyer_flags.py) on PostgreSQL
and MariaDB: the window functions, the NULL handling and the same-instant rule of
crm/buyer_flags.sql must give the same flags on every engine the CRM may live on."""

from __future__ import annotations

import pytest

from tests.integration.test_buyer_flags import check_hand_made


@pytest.mark.parametrize("server", ["postgres", "mariadb"])
def test_hand_made_flags_on_server(server: str, request: pytest.FixtureRequest,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    databases = request.getfixturevalue(server)
    check_hand_made(databases.create(f"flags_{server}"), monkeypatch)
