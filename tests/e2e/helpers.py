"""Shared pieces of the end-to-end tests: a real SMTP server that keeps what it receives."""

from __future__ import annotations

import json
import os
import shutil
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
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


def headless_chromium(downloads: Path | None = None, width: int = 1400, height: int = 1000):
    """Debian's headless Chromium through Selenium (skipped off CI when it is not installed)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        if os.environ.get("CI"):
            pytest.fail("chromium and chromedriver are needed: Debian's chromium and chromium-driver (.ci/run installs them)")
        pytest.skip("Debian's chromium and chromium-driver are not installed")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--window-size={width},{height}", "--force-device-scale-factor=1"):
        options.add_argument(flag)
    if downloads is not None:
        options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                                  "download.prompt_for_download": False})
    return webdriver.Chrome(options=options, service=Service(driver))


def screenshot_dir(test_home: Path) -> Path:
    """Where screenshots go: `CRM_KPIS_SCREENSHOTS` (used to refresh docs/), else the test home."""
    target = Path(os.environ.get("CRM_KPIS_SCREENSHOTS") or test_home / "screenshots")
    target.mkdir(parents=True, exist_ok=True)
    return target
