"""Every page of the application, with data: a screenshot each (the artifacts), and axe-core finds no critical
accessibility violation. Also: an expired session goes back to login, ISTA line errors, the offline API docs."""

from __future__ import annotations

import base64
import json
import time

from playwright.sync_api import Page, expect

from koprogo_iot import demo
from tests.e2e.conftest import Platform, assert_accessible, log_in, poll, screenshot, text


def flow_sensor(platform: Platform) -> str:
    assert platform.running.demo is not None
    return next(str(s.id) for s in platform.running.demo.sensors if s.sensor_id == "KAM-FLOWIQ-60020042")


def test_each_page_with_data_is_accessible(page: Page, platform: Platform) -> None:
    page.goto(f"{platform.url}/")
    expect(page.get_by_role("button", name=text("login.submit"))).to_be_visible()
    screenshot(page, "login")
    assert_accessible(page)

    log_in(page, platform)
    sensor_id = flow_sensor(platform)
    with platform.client() as client:  # the flow meter has spoken: its history has points
        poll(lambda: client.get(f"/api/v1/iot/sensors/{sensor_id}").json()["last_value"] is not None, timeout=30)
    # Each page, and what shows that its data has arrived.
    pages = [
        ("dashboard-syndic", "/", '[data-testid=live-chart]:not([data-points="0"])'),
        ("sensors", "/sensors", "[data-testid=sensor-row]"),
        ("sensor-details", f"/sensors/{sensor_id}?range=1h", '[data-testid=history-chart]:not([data-points="0"])'),
        ("sensor-edit", f"/sensors/{sensor_id}/edit", "[data-testid=rules-editor] tbody tr"),
        ("alert-rules-by-type", "/sensors?tab=rules", "[data-testid=rules-editor] tbody tr"),
        ("alerts-all", "/alerts?status=all", "[data-testid=alert-stats]"),
        ("analytics-consumption", "/analytics", "[data-testid=consumption-table] tbody tr"),
        ("analytics-comparison", "/analytics?tab=comparison", "[data-testid=units-vs-median] tbody tr"),
        # The demo's main water meter against its flats' meters: 2 % unexplained.
        ("analytics-balance", "/analytics?tab=balance", "[data-testid=balance-share]"),
        ("analytics-forecast", "/analytics?tab=forecast", "[data-testid=forecast-group]"),
        ("analytics-insights", "/analytics?tab=insights", "[data-testid=insights] > *"),
        ("analytics-ista", "/analytics?tab=ista", "[data-testid=ista-report]"),
        ("settings", "/settings", "[data-testid=users] tbody tr"),
    ]
    for name, path, loaded in pages:
        page.goto(f"{platform.url}{path}")
        expect(page.locator(loaded).first).to_be_visible(timeout=30_000)
        if name == "analytics-comparison":
            expect(page.locator("[data-testid=period-comparison] tbody tr").first).to_be_visible()
        screenshot(page, name)
        assert_accessible(page)
    # The forecast (the demo's 16 months of history): the building's electricity to the end of the month and the
    # year, each with its interval and its back-tested error.
    page.goto(f"{platform.url}/analytics?tab=forecast")
    group = page.get_by_test_id("forecast-group").first
    expect(group.get_by_test_id("projected")).to_contain_text("kWh")
    expect(group.get_by_test_id("backtest")).to_contain_text("%")
    page.get_by_test_id("horizon").select_option("year")
    expect(group).to_contain_text("31 déc. 2026")
    screenshot(page, "analytics-forecast-year")
    # The details page's history has points, and its CSV downloads.
    page.goto(f"{platform.url}/sensors/{sensor_id}?range=1h")
    expect(page.get_by_test_id("history-chart")).not_to_have_attribute("data-points", "0")
    with page.expect_download() as download:
        page.get_by_test_id("csv").click()
    assert download.value.suggested_filename.endswith(".csv")
    with open(download.value.path(), encoding="utf-8") as exported:
        assert "start" in exported.readline()


def test_an_expired_session_goes_back_to_login_with_a_message(page: Page, platform: Platform) -> None:
    log_in(page, platform)
    # The token as the server issued it, its expiry moved into the past (and the signature no longer matching):
    # the API answers 401 like for any token past its life.
    stored = json.loads(page.evaluate("localStorage.getItem('koprogo.session')"))
    header, claims, signature = stored["token"].split(".")
    decoded = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
    decoded["exp"] = int(time.time()) - 60
    claims = base64.urlsafe_b64encode(json.dumps(decoded).encode()).decode().rstrip("=")
    stored["token"] = f"{header}.{claims}.{signature}"
    page.evaluate("s => localStorage.setItem('koprogo.session', s)", json.dumps(stored))
    page.goto(f"{platform.url}/alerts")
    expect(page.get_by_test_id("session-notice")).to_have_text(text("login.expired"))
    expect(page).to_have_url(f"{platform.url}/login?next=%2Falerts")
    log_in_again = page.get_by_label(text("login.email"))
    log_in_again.fill(demo.SYNDIC_EMAIL)
    page.get_by_label(text("login.password")).fill(demo.DEMO_PASSWORD)
    page.get_by_role("button", name=text("login.submit")).click()
    expect(page).to_have_url(f"{platform.url}/alerts")  # back where the person was


def test_an_ista_import_shows_its_line_errors(page: Page, platform: Platform, tmp_path) -> None:  # type: ignore[no-untyped-def]
    csv = tmp_path / "ista.csv"
    csv.write_text(
        "building;unit;meter_number;meter_type;reading_date;value;unit_of_measure;reading_kind\n"
        "Résidence du Parc;App. 1.1;KAM-MC21-App11-CW;WATER_COLD;01/11/2026;12,5;m³;ACTUAL\n"
        "Résidence du Parc;App. 9.9;0099;WATER_COLD;31/02/2026;1;m³;ACTUAL\n",
        encoding="utf-8",
    )
    log_in(page, platform)
    page.goto(f"{platform.url}/analytics?tab=ista")
    page.get_by_test_id("ista-file").set_input_files(str(csv))
    expect(page.get_by_test_id("ista-result")).to_contain_text("1")
    errors = page.get_by_test_id("ista-errors")
    expect(errors.locator("tbody tr")).to_have_count(1)
    expect(errors.locator("tbody td").first).to_have_text("3")
    screenshot(page, "analytics-ista-import")


def test_api_docs_work_offline(page: Page, platform: Platform) -> None:
    outside: list[str] = []
    local = (platform.url, "blob:", "data:")  # ReDoc's search worker runs from a blob of its own script
    page.on("request", lambda r: None if r.url.startswith(local) else outside.append(r.url))
    page.goto(f"{platform.url}/docs")
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible()
    page.goto(f"{platform.url}/redoc")
    expect(page.get_by_text("KoproGo IoT").first).to_be_visible()
    assert outside == []


def test_a_sensor_override_of_the_alert_rules_shows_its_effective_result(page: Page, platform: Platform) -> None:
    sensor_id = flow_sensor(platform)
    log_in(page, platform)
    page.goto(f"{platform.url}/sensors/{sensor_id}/edit")
    editor = page.get_by_test_id("rules-editor")
    effective = editor.get_by_test_id("effective-threshold.duration_s")
    expect(effective).to_have_text("0")
    editor.get_by_label(f"{text('rules.group.threshold')} {text('rules.field.duration_s')}").fill("600")
    editor.get_by_role("button", name=text("rules.save")).click()
    expect(effective).to_have_text("600")
    with platform.client() as client:
        assert client.get(f"/api/v1/iot/sensors/{sensor_id}/alert-rules").json()["override"] == {
            "threshold": {"duration_s": 600}
        }
    # A contradiction is refused by the API, and the editor says why.
    editor.get_by_label(f"{text('rules.group.battery')} {text('rules.field.clear_percent')}").fill("5")
    editor.get_by_role("button", name=text("rules.save")).click()
    expect(editor.locator(".message.error")).to_contain_text("clear_percent")
    editor.get_by_role("button", name=text("rules.resetSensor")).click()
    expect(effective).to_have_text("0")
