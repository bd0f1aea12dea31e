"""The hand-made SQL sets on PostgreSQL and MariaDB: the cross-sell / up-sell flags
(tests/integration/test_buyer_flags.py) and the purchase histories of the lifetime-value models
(tests/integration/test_purchase_histories.py). Their window functions, NULL handling, DISTINCT,
same-instant rule and holdout buckets must give the same rows on every engine the CRM may live on."""

from __future__ import annotations

import pytest

from tests.integration import test_buyer_flags, test_purchase_histories

CHECKS = {"flags": test_buyer_flags.check_hand_made, "histories": test_purchase_histories.check_hand_made}


@pytest.mark.parametrize("check", sorted(CHECKS))
@pytest.mark.parametrize("server", ["postgres", "mariadb"])
def test_hand_made_set_on_server(server: str, check: str, request: pytest.FixtureRequest,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    databases = request.getfixturevalue(server)
    CHECKS[check](databases.create(f"{check}_{server}"), monkeypatch)
