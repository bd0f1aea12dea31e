"""The demo's report email, the company-wide one and a variant's, in a real browser engine at a
phone's width (375 px) and at the usual 600 px, in light and dark mode: nothing runs off the side,
every headline value is on screen, and the colours stay the email's own (explicit dark text on
white)."""

from __future__ import annotations

import pytest

from tests.e2e.helpers import headless_chromium, screenshot_dir

CHECK = """
const width = document.documentElement.clientWidth;
const rows = [...document.querySelector('th').closest('table').rows].slice(1);
const cells = rows.flatMap(r => [...r.children]);
return {
  width: width, scroll: document.documentElement.scrollWidth, rows: rows.length,
  overflowing: cells.filter(c => c.getBoundingClientRect().right > width + 0.5).map(c => c.textContent.trim()),
  background: getComputedStyle(document.body).backgroundColor,
  text: getComputedStyle(rows[0].children[1]).color,
  dark: matchMedia('(prefers-color-scheme: dark)').matches,
};
"""


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", [375, 600])
@pytest.mark.parametrize("edition", ["company", "segment-enterprise"])
def test_the_email_fits_and_keeps_its_colours(demo, width, scheme, edition, test_home):
    home, _ = demo
    emails = sorted((home / "reports" / "monthly_executive").glob("*.email.html"))
    (email,) = [e for e in emails if (e.name.count(".") == 2) == (edition == "company")
                and (edition == "company" or f".{edition}." in e.name)]
    browser = headless_chromium()
    try:
        browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 500})
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia",
                                {"features": [{"name": "prefers-color-scheme", "value": scheme}]})
        browser.get(email.as_uri())
        seen = browser.execute_script(CHECK)
        browser.save_screenshot(str(screenshot_dir(test_home) / f"email-{edition}-{width}-{scheme}.png"))
    finally:
        browser.quit()
    assert seen["width"] == width and seen["dark"] == (scheme == "dark")
    assert seen["rows"] == 8  # the eight headline KPIs
    assert seen["scroll"] <= width, f"the email is {seen['scroll']} px wide at {width} px"
    assert seen["overflowing"] == [], seen["overflowing"]
    assert seen["background"] == "rgb(255, 255, 255)" and seen["text"] == "rgb(26, 26, 26)"
