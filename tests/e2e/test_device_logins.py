"""A syndic gives a gateway its MQTT login in the settings, the gateway publishes with it, then the syndic revokes it
and the broker refuses it."""

from __future__ import annotations

import json
import subprocess
import uuid

from playwright.sync_api import Page, expect

from koprogo_iot.domain.clock import utcnow
from tests.conftest import login_args
from tests.e2e.conftest import Platform, add_sensor, assert_accessible, log_in, poll, screenshot, text


def publish(platform: Platform, username: str, password: str, topic: str, value: float) -> int:
    """mosquitto_pub with this login; its exit status (non-zero: refused)."""
    endpoint = platform.running.mqtt.with_login(username, password)
    body = json.dumps({"timestamp": utcnow().isoformat(), "value": value})
    done = subprocess.run(
        ["mosquitto_pub", *login_args(endpoint), "-q", "1", "-t", topic, "-m", body], capture_output=True, timeout=10
    )
    return done.returncode


def test_a_gateway_login_issued_in_the_settings_publishes_until_revoked(page: Page, platform: Platform) -> None:
    with platform.client() as client:
        sensor = add_sensor(platform, client, f"FLOW-GW-{uuid.uuid4().hex[:6]}")
    name = f"Passerelle {uuid.uuid4().hex[:4]}"

    log_in(page, platform)
    page.get_by_role("link", name=text("nav.settings")).click()
    logins = page.get_by_test_id("device-logins")
    logins.get_by_label(text("settings.name")).fill(name)
    logins.get_by_label(text("logins.scope")).select_option(platform.building_id)
    logins.get_by_role("button", name=text("logins.add")).click()

    issued = page.get_by_test_id("issued-login")
    expect(issued).to_contain_text(name)
    username = page.get_by_test_id("issued-username").inner_text()
    password = page.get_by_test_id("issued-password").inner_text()
    screenshot(page, "settings-device-logins")
    assert_accessible(page)

    assert publish(platform, username, password, sensor["mqtt_topic"], 12.5) == 0
    with platform.client() as client:
        poll(lambda: client.get(f"/api/v1/iot/sensors/{sensor['id']}/readings").json())

    issued.get_by_role("button", name=text("logins.noted")).click()
    expect(issued).to_have_count(0)  # shown once: gone from the page, never in the list
    row = page.locator(f'[data-login="{username}"]')
    expect(row).not_to_contain_text(password)
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name=text("logins.revoke")).click()
    expect(row.get_by_role("button", name=text("logins.revoke"))).to_have_count(0)
    assert publish(platform, username, password, sensor["mqtt_topic"], 13.5) != 0
