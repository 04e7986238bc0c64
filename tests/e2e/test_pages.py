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
    pages = [
        ("dashboard-syndic", "/", "live-chart"),
        ("sensors", "/sensors", "sensor-row"),
        ("sensor-details", f"/sensors/{sensor_id}?range=1h", "history-chart"),
        ("sensor-edit", f"/sensors/{sensor_id}/edit", "rules-editor"),
        ("alert-rules-by-type", "/sensors?tab=rules", "rules-editor"),
        ("alerts-all", "/alerts?status=all", "alert-stats"),
        ("analytics-consumption", "/analytics", "consumption-table"),
        ("analytics-comparison", "/analytics?tab=comparison", "period-comparison"),
        ("analytics-insights", "/analytics?tab=insights", "insights"),
        ("analytics-ista", "/analytics?tab=ista", "ista-report"),
        ("settings", "/settings", "users"),
    ]
    for name, path, marker in pages:
        page.goto(f"{platform.url}{path}")
        expect(page.get_by_test_id(marker).first).to_be_visible()
        screenshot(page, name)
        assert_accessible(page)
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
