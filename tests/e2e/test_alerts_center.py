"""A syndic's day: an alert opens, they find it in the alerts center and acknowledge it with a note."""

from __future__ import annotations

import re
import uuid

from playwright.sync_api import Page, expect

from tests.e2e.conftest import Platform, add_sensor, assert_accessible, log_in, poll, screenshot, text


def test_acknowledging_an_alert_with_a_note(page: Page, platform: Platform) -> None:
    with platform.client() as client:
        sensor = add_sensor(platform, client, f"FLOW-ACK-{uuid.uuid4().hex[:6]}", alert_threshold_max=50)
        platform.reading(sensor["mqtt_topic"], 80)
        [alert] = poll(lambda: client.get("/api/v1/iot/alerts", params={"sensor_id": sensor["id"]}).json())

    log_in(page, platform)
    page.goto(f"{platform.url}/alerts/{alert['id']}")  # where the notification email links to
    row = page.locator(f'[data-alert-id="{alert["id"]}"]')
    expect(row).to_have_class(re.compile(r"\bfocused\b"))
    expect(page.get_by_test_id("alert-stats")).to_be_visible()
    screenshot(page, "alerts")
    assert_accessible(page)

    row.get_by_test_id("ack-button").click()
    dialog = page.get_by_test_id("ack-dialog")
    note = "Plombier prévenu, passage demain 9 h"
    dialog.get_by_test_id("ack-note").fill(note)
    assert_accessible(page)
    dialog.get_by_role("button", name=text("alerts.acknowledge")).click()

    expect(row.get_by_test_id("ack-note-text")).to_contain_text(note)
    expect(row.get_by_test_id("ack-button")).to_have_count(0)
    with platform.client() as client:
        stored = client.get(f"/api/v1/iot/alerts/{alert['id']}").json()
    assert stored["acknowledged"] is True and stored["resolution_note"] == note

    # Filters: the acknowledged alert leaves "to acknowledge" and stays under "acknowledged".
    page.get_by_role("link", name=text("nav.alerts")).click()
    page.get_by_label(text("alerts.acknowledgedFilter")).select_option("false")
    expect(page.locator(f'[data-alert-id="{alert["id"]}"]')).to_have_count(0)
    page.get_by_label(text("alerts.acknowledgedFilter")).select_option("true")
    expect(page.locator(f'[data-alert-id="{alert["id"]}"]')).to_have_count(1)
