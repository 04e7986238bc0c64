"""An installer's journey: a syndic registers a device in the form, the onboarding view shows the topic to
configure and why a wrong message is refused, then the first good reading arrives and shows on the dashboard."""

from __future__ import annotations

import time
import uuid

from playwright.sync_api import Page, expect

from tests.e2e.conftest import Platform, assert_accessible, log_in, screenshot, text


def test_a_sensor_added_in_the_form_goes_live_on_the_dashboard(page: Page, platform: Platform) -> None:
    device = f"KAM-NEW-{uuid.uuid4().hex[:6].upper()}"
    log_in(page, platform)
    page.goto(f"{platform.url}/sensors")
    page.get_by_role("link", name=text("sensors.add")).first.click()

    form = page.get_by_test_id("sensor-form")
    form.get_by_label(text("form.sensorId")).fill(device)
    form.locator("select[name=sensor_type]").select_option("cold_water")
    form.get_by_label(text("form.kind")).select_option("instantaneous")
    form.get_by_label(text("form.unitOfMeasure")).fill("L/h")
    form.get_by_label(text("form.manufacturer")).fill("Kamstrup")
    form.get_by_label(text("form.model")).fill("flowIQ 2200")
    form.get_by_label(text("form.location")).fill("Cave, colonne montante B")
    form.get_by_label(text("form.sampling")).fill("60")
    form.get_by_label(text("form.thresholdMax")).fill("120")
    screenshot(page, "sensor-form")
    assert_accessible(page)
    form.get_by_role("button", name=text("form.create")).click()

    # The onboarding view: waiting, with the topic the device must publish to.
    state = page.get_by_test_id("onboarding-state")
    expect(state).to_have_attribute("data-state", "waiting")
    topic = page.get_by_test_id("mqtt-topic").inner_text()
    assert topic.endswith(f"/{device}/readings")

    # A device misconfigured: its broken message appears with the reason, live.
    platform.publish(topic, "{broken")
    letter = page.get_by_test_id("dead-letter").first
    expect(letter).to_have_attribute("data-reason", "invalid_json")
    expect(letter).to_contain_text(text("reason.invalid_json"))

    platform.reading(topic, 42.5, battery_level=97, signal_strength=-61)
    expect(state).to_have_attribute("data-state", "receiving")
    expect(state).to_contain_text("42,5")
    screenshot(page, "sensor-onboarding")
    assert_accessible(page)

    page.get_by_role("link", name=text("onboarding.toDashboard")).click()
    card = page.locator(f'[data-device="{device}"]')
    expect(card.get_by_test_id("value")).to_contain_text("42,5")
    expect(card.get_by_test_id("status")).to_have_text(text("health.ok"))
    # The next reading arrives live, without reloading, with its battery and signal.
    platform.reading(topic, 43.5, battery_level=96, signal_strength=-58)
    expect(card.get_by_test_id("value")).to_contain_text("43,5")
    expect(card).to_contain_text("-58 dBm")
    expect(card).to_contain_text("96")


def test_the_form_shows_why_the_api_refuses_a_sensor(page: Page, platform: Platform) -> None:
    log_in(page, platform)
    page.goto(f"{platform.url}/sensors/new")
    form = page.get_by_test_id("sensor-form")
    form.get_by_label(text("form.sensorId")).fill("KAM-FLOWIQ-60020042")  # the demo's flow meter
    form.get_by_label(text("form.manufacturer")).fill("Kamstrup")
    form.get_by_label(text("form.model")).fill("flowIQ 2200")
    form.get_by_label(text("form.location")).fill("Duplicate")
    form.get_by_role("button", name=text("form.create")).click()
    expect(page.get_by_test_id("form-error")).to_contain_text("already registered")


def shelly_status(device: str, total_wh: float, power_w: float) -> dict[str, object]:
    """A Shelly Pro 3EM's RPC notification (Gen2+ `NotifyStatus`): its energy counter and its power."""
    return {
        "src": device, "dst": "koprogo", "method": "NotifyStatus",
        "params": {"ts": time.time(), "emdata:0": {"total_act": total_wh}, "em:0": {"total_act_power": power_w}},
    }  # fmt: skip


def test_a_device_heard_on_the_broker_becomes_a_sensor_from_the_form(page: Page, platform: Platform) -> None:
    """A Shelly is wired and publishing before anyone registers it: the form offers it, the sensor reads one of its
    values, and its next message shows on the dashboard (Wh converted to the sensor's kWh)."""
    assert platform.running.demo is not None
    device = f"shellypro3em-{uuid.uuid4().hex[:12]}"
    org, building = platform.running.demo.organization.id, platform.running.demo.building.id
    topic = f"koprogo/{org}/{building}/shelly/{device}/events/rpc"
    platform.publish(topic, shelly_status(device, 123_456.7, 1520.5))

    log_in(page, platform)
    page.goto(f"{platform.url}/sensors/new")
    heard = page.locator(f'[data-testid=heard-device][data-device="{device}"]')
    expect(heard).to_contain_text("em:0.total_act_power")
    screenshot(page, "sensor-form-heard-device")
    heard.locator('[data-field="emdata:0.total_act"]').click()

    form = page.get_by_test_id("sensor-form")
    expect(form.get_by_label(text("form.sensorId"))).to_have_value(device)
    expect(form.get_by_label(text("device.format"))).to_have_value("shelly")
    expect(form.get_by_label(text("device.field"))).to_have_value("emdata:0.total_act")
    expect(form.get_by_label(text("form.unitOfMeasure"))).to_have_value("kWh")
    expect(form.locator("select[name=sensor_type]")).to_have_value("electricity")
    form.get_by_label(text("form.manufacturer")).fill("Shelly")
    form.get_by_label(text("form.model")).fill("Pro 3EM")
    form.get_by_label(text("form.location")).fill("Tableau des communs, énergie active")
    form.get_by_label(text("form.sampling")).fill("60")
    form.get_by_role("button", name=text("form.create")).click()

    expect(page.get_by_test_id("mqtt-topic")).to_have_text(f"koprogo/{org}/{building}/shelly/{device}")
    # The device's next status. Ingestion looks an unknown device up again after a few seconds (its negative
    # cache): like a real Shelly, which reports every minute, the device repeats itself until it is heard.
    state = page.get_by_test_id("onboarding-state")
    deadline = time.monotonic() + 20
    while True:
        platform.publish(topic, shelly_status(device, 123_500.0, 1490.0))
        try:
            expect(state).to_have_attribute("data-state", "receiving", timeout=2_500)
            break
        except AssertionError:
            if time.monotonic() > deadline:
                raise
    expect(state).to_contain_text("123,5")

    page.goto(f"{platform.url}/")
    card = page.locator(f'[data-device="{device}"]')
    expect(card.get_by_test_id("value")).to_contain_text("123,5")
    platform.publish(topic, shelly_status(device, 124_250.0, 1400.0))  # live, without reloading
    expect(card.get_by_test_id("value")).to_contain_text("124,3")  # 124.25 kWh, 1 decimal above 100
    with platform.client() as client:
        sensors = client.get("/api/v1/iot/sensors").json()
    [sensor] = [s for s in sensors if s["sensor_id"] == device]
    assert (sensor["device_format"], sensor["device_field"], sensor["unit_of_measure"]) == (
        "shelly", "emdata:0.total_act", "kWh",
    )  # fmt: skip
