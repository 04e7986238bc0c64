"""French by default, Dutch and English on demand; a co-owner's phone (390 px wide): dashboard and history."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, Page, expect

from koprogo_iot import demo
from tests.e2e.conftest import Platform, close_page, log_in, new_page, screenshot, text


def test_switching_to_dutch_changes_the_labels(page: Page, platform: Platform) -> None:
    log_in(page, platform)
    nav = page.get_by_role("navigation")
    expect(nav.get_by_role("link", name=text("nav.sensors"))).to_be_visible()
    assert page.evaluate("document.documentElement.lang") == "fr"
    expect(page.get_by_role("heading", name=text("dashboard.common"))).to_be_visible()

    page.get_by_test_id("language").select_option("nl")
    expect(nav.get_by_role("link", name=text("nav.sensors", "nl"))).to_be_visible()
    expect(nav.get_by_role("link", name=text("nav.alerts", "nl"))).to_be_visible()
    expect(page.get_by_role("heading", name=text("dashboard.common", "nl"))).to_be_visible()
    expect(page.get_by_role("button", name=text("nav.logout", "nl"))).to_be_visible()
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
        every_card_live = (
            "() => [...document.querySelectorAll('[data-testid=sensor-card]')].every(c => c.dataset.readingAt)"
        )
        page.wait_for_function(every_card_live, timeout=2 * demo.DEMO_INTERVAL * 1000 + 5_000)
        screenshot(page, "phone-dashboard")

        page.locator('[data-testid=sensor-card][data-device^="SHELLY-HT"]').click()  # the living room's temperature
        chart = page.get_by_test_id("history-chart")
        expect(chart).to_be_visible()
        page.get_by_role("button", name=text("range.1h")).click()
        expect(page).to_have_url(re.compile(r"range=1h"))
        expect(page.get_by_text(re.compile(r"par 1\s?min"))).to_be_visible()  # the hour's buckets: 1 minute
        expect(chart).to_be_visible()
        width = page.evaluate("document.querySelector('[data-testid=history-chart]').getBoundingClientRect().width")
        assert 300 <= width <= 390
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        screenshot(page, "phone-sensor-history")
    finally:
        close_page(page)
