"""Shared pieces of the end-to-end tests: a real SMTP server that keeps what it receives."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from email import policy
from email.parser import BytesParser

from aiosmtpd.controller import Controller


class Inbox:
    def __init__(self) -> None:
        self.messages: list[dict] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.messages.append({"rcpt": list(envelope.rcpt_tos), "mail_from": envelope.mail_from,
                              "message": BytesParser(policy=policy.default).parsebytes(envelope.content)})
        return "250 Message accepted for delivery"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port_block() -> int:
    """A port whose two neighbours (the log servers) are free too."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port < 65000 and all(port_is_free(port + i) for i in (1, 2)):
            return port
    raise RuntimeError("no free port block")


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


@contextmanager
def smtp_server() -> Iterator[tuple[Inbox, str]]:
    """A real SMTP server on a free loopback port, and an Airflow connection (JSON) pointing at it."""
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    conn = {"conn_type": "smtp", "host": "127.0.0.1", "port": controller.port,
            "extra": {"disable_ssl": True, "disable_tls": True, "from_email": "kpi-reports@example.com",
                      "timeout": 10, "retry_limit": 1}}
    try:
        yield inbox, json.dumps(conn)
    finally:
        controller.stop()
