"""French by default, Dutch and English on demand; a co-owner's phone (390 px wide): dashboard and history."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, Page, expect

from koprogo_iot import demo
from tests.e2e.conftest import CATALOGS, Platform, close_page, english_to_key, log_in, new_page, screenshot, text

CATALOGS_BY_TEXT = {v: CATALOGS["en"][k] for k, v in CATALOGS["fr"].items() if k.startswith("health.")}


def test_switching_to_dutch_changes_the_labels(page: Page, platform: Platform) -> None:
    log_in(page, platform)
    nav = page.get_by_role("navigation")
    expect(nav.get_by_role("link", name=text("nav.sensors"))).to_be_visible()
    assert page.evaluate("document.documentElement.lang") == "fr"
    status = page.get_by_test_id("status").first
    key = english_to_key(CATALOGS_BY_TEXT[status.inner_text()], "health.")

    page.get_by_test_id("language").select_option("nl")
    expect(nav.get_by_role("link", name=text("nav.sensors", "nl"))).to_be_visible()
    expect(nav.get_by_role("link", name=text("nav.alerts", "nl"))).to_be_visible()
    expect(status).to_have_text(text(key, "nl"))
    assert page.evaluate("document.documentElement.lang") == "nl"
    screenshot(page, "dashboard-nl")

    page.reload()  # the choice is remembered
    expect(nav.get_by_role("link", name=text("nav.alerts", "nl"))).to_be_visible()
    page.get_by_test_id("language").select_option("en")
    expect(nav.get_by_role("link", name="Alerts")).to_be_visible()


def test_a_phone_shows_the_dashboard_and_a_sensor_history(browser: Browser, platform: Platform) -> None:
    page = new_page(browser, width=390, height=844)
    try:
        log_in(page, platform, demo.OWNER_EMAIL)
        expect(page.get_by_test_id("sensor-card").first).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing wider than the screen
        nav = page.get_by_role("navigation")
        expect(nav).to_be_hidden()
        page.get_by_role("button", name=text("nav.menu")).click()
        expect(nav.get_by_role("link", name=text("nav.alerts"))).to_be_visible()
        page.get_by_role("button", name=text("nav.menu")).click()
        expect(page.get_by_test_id("live-chart").first).not_to_have_attribute("data-points", "0", timeout=25_000)
        screenshot(page, "phone-dashboard")

        page.locator('[data-testid=sensor-card]:not([data-reading-at=""])').first.click()
        chart = page.get_by_test_id("history-chart")
        expect(chart).to_be_visible()
        page.get_by_role("button", name=text("range.7d")).click()
        expect(page).to_have_url(re.compile(r"range=7d"))
        expect(chart).to_be_visible()
        width = chart.bounding_box()
        assert width is not None and width["width"] <= 390
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        screenshot(page, "phone-sensor-history")
    finally:
        close_page(page)
