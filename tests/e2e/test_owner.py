"""A co-owner checks their unit: only their unit's and the common meters, read-only; a neighbour's sensor opened
by its address is "not found"."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from koprogo_iot import demo
from tests.e2e.conftest import Platform, assert_accessible, log_in, screenshot, text


def test_an_owner_sees_only_their_unit_read_only(page: Page, platform: Platform) -> None:
    assert platform.running.demo is not None
    with platform.client(demo.OWNER_EMAIL) as client:
        me = client.get("/api/v1/auth/me").json()
    with platform.client() as syndic:  # every sensor of the building, those other tests added included
        everything = syndic.get("/api/v1/iot/sensors", params={"building_id": platform.building_id}).json()
    mine = [s for s in everything if s["unit_id"] is None or s["unit_id"] in me["unit_ids"]]
    neighbour = next(s for s in everything if s["unit_id"] and s["unit_id"] not in me["unit_ids"])

    log_in(page, platform, demo.OWNER_EMAIL)
    cards = page.get_by_test_id("sensor-card")
    expect(cards).to_have_count(len(mine))
    shown = {cards.nth(i).get_attribute("data-sensor-id") for i in range(len(mine))}
    assert shown == {s["id"] for s in mine}
    expect(page.get_by_role("heading", name="App. 1.1")).to_be_visible()
    expect(page.get_by_role("heading", name="App. 1.2")).to_have_count(0)
    # Read-only: no way to add, edit or delete, no settings.
    expect(page.get_by_role("link", name=text("sensors.add"))).to_have_count(0)
    expect(page.get_by_role("link", name=text("nav.settings"))).to_have_count(0)
    screenshot(page, "owner-dashboard")
    assert_accessible(page)

    page.get_by_role("link", name=text("nav.sensors")).click()
    expect(page.get_by_test_id("sensor-row")).to_have_count(len(mine))
    expect(page.get_by_role("button", name=text("common.delete"))).to_have_count(0)
    expect(page.get_by_role("link", name=text("common.edit"))).to_have_count(0)

    page.goto(f"{platform.url}/sensors/{neighbour['id']}")
    expect(page.get_by_test_id("not-found")).to_be_visible()
    page.goto(f"{platform.url}/sensors/{next(s['id'] for s in mine if s['unit_id'])}")
    expect(page.get_by_test_id("history-chart")).to_be_visible()
    expect(page.get_by_role("button", name=text("common.delete"))).to_have_count(0)
