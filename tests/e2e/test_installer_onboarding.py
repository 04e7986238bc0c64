"""An installer's journey: a syndic registers a device in the form, the onboarding view shows the topic to
configure and why a wrong message is refused, then the first good reading arrives and shows on the dashboard."""

from __future__ import annotations

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
    form.get_by_label(text("form.type")).select_option("cold_water")
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
