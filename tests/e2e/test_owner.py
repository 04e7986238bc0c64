"""A co-owner checks their unit: only their unit's and the common meters, read-only; a neighbour's sensor opened
by its address is "not found"."""

from __future__ import annotations

import uuid

from playwright.sync_api import Browser, Page, expect

from koprogo_iot import demo
from tests.e2e.conftest import Platform, assert_accessible, close_page, log_in, new_page, screenshot, text


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


def test_an_owner_chooses_where_alerts_reach_them_and_the_syndic_sees_it(
    page: Page, browser: Browser, platform: Platform
) -> None:
    log_in(page, platform, demo.OWNER_EMAIL)
    page.get_by_test_id("user-name").click()  # the name in the bar is the way to one's account
    expect(page.get_by_role("heading", name=text("account.title"))).to_be_visible()
    form = page.get_by_test_id("account-form")
    sms, push = (form.get_by_role("checkbox", name=text(f"channel.{c}")) for c in ("sms", "push"))
    expect(sms).to_be_checked()
    form.get_by_label(text("settings.phone")).fill("")
    expect(page.get_by_test_id("account-unreachable").first).to_have_text(text("account.noAddress.sms"))
    form.get_by_label(text("settings.phone")).fill("+32 470 99 88 77")
    sms.uncheck()
    push.uncheck()
    form.get_by_role("button", name=text("form.save")).click()
    expect(page.get_by_test_id("account-message")).to_have_text(text("account.saved"))
    screenshot(page, "account")
    assert_accessible(page)
    page.reload()  # what was saved, as the server has it
    expect(form.get_by_label(text("settings.phone"))).to_have_value("+32470998877")
    expect(form.get_by_role("checkbox", name=text("channel.email"))).to_be_checked()
    expect(sms).not_to_be_checked()
    expect(push).not_to_be_checked()

    # On a phone the name is hidden: the menu leads there.
    phone = new_page(browser, width=390, height=844)
    try:
        log_in(phone, platform, demo.OWNER_EMAIL)
        phone.get_by_role("button", name=text("nav.menu")).click()
        phone.get_by_role("link", name=text("nav.account")).click()
        expect(phone.get_by_role("checkbox", name=text("channel.sms"))).not_to_be_checked()
    finally:
        close_page(phone)

    syndic = new_page(browser)
    try:
        log_in(syndic, platform)
        syndic.goto(f"{platform.url}/settings")
        with platform.client(demo.OWNER_EMAIL) as client:
            name = client.get("/api/v1/auth/me").json()["full_name"]
        row = syndic.get_by_test_id("users").locator("tr", has_text=name)
        muted = ", ".join(text(f"channel.{c}") for c in ("push", "sms"))
        expect(row).to_contain_text(text("account.muted").replace("{channels}", muted))
    finally:
        close_page(syndic)
        with platform.client(demo.OWNER_EMAIL) as client:  # as the demo had it, for the other tests
            me = client.get("/api/v1/auth/me").json()
            client.put(f"/api/v1/users/{me['id']}/contacts", json={"phone": None, "muted_channels": []})


def test_a_user_changes_their_password_and_a_syndic_resets_it_then_deactivates_them(
    page: Page, browser: Browser, platform: Platform
) -> None:
    # A user of this test's own: the demo's logins stay as the other tests know them.
    email, first, second = f"paula.peeters-{uuid.uuid4().hex[:6]}@demo.koprogo.be", "first-password", "second-password"
    with platform.client() as syndic:
        unit = syndic.get("/api/v1/units").json()[0]["id"]
        user = {"email": email, "full_name": "Paula Peeters", "password": first, "role": "owner", "unit_ids": [unit]}
        assert syndic.post("/api/v1/users", json=user).status_code == 201
    other = new_page(browser)
    try:
        log_in(other, platform, email, first)
        log_in(page, platform, email, first)
        page.goto(f"{platform.url}/account")
        form = page.get_by_test_id("password-form")
        form.get_by_label(text("account.currentPassword")).fill("not-the-password")
        form.get_by_label(text("account.newPassword"), exact=True).fill(second)
        form.get_by_label(text("account.newPasswordAgain")).fill(second)
        form.get_by_role("button", name=text("account.changePassword")).click()
        expect(page.get_by_test_id("account-message")).to_have_text(text("account.wrongPassword"))
        form.get_by_label(text("account.currentPassword")).fill(first)
        form.get_by_label(text("account.newPasswordAgain")).fill(second + "!")
        form.get_by_role("button", name=text("account.changePassword")).click()
        expect(page.get_by_test_id("account-message")).to_have_text(text("account.passwordsDiffer"))
        form.get_by_label(text("account.newPasswordAgain")).fill(second)
        form.get_by_role("button", name=text("account.changePassword")).click()
        expect(page.get_by_test_id("account-message")).to_have_text(text("account.passwordChanged"))
        screenshot(page, "account-password")
        # This session goes on with its new token; the other one is sent to log in again at its next call.
        page.get_by_role("link", name=text("nav.alerts")).click()
        expect(page.get_by_role("button", name=text("nav.logout"))).to_be_visible()
        other.get_by_role("link", name=text("nav.alerts")).click()
        expect(other.get_by_test_id("session-notice")).to_have_text(text("login.expired"))
        page.get_by_role("button", name=text("nav.logout")).click()
        log_in(page, platform, email, second)

        # Forgotten: the syndic gives a new one from the users table, and the user's session ends.
        log_in(other, platform)
        other.goto(f"{platform.url}/settings")
        row = other.get_by_test_id("users").locator("tr", has_text="Paula Peeters")
        row.get_by_role("button", name=text("settings.resetPassword")).click()
        reset = other.get_by_test_id("reset-password")
        reset.get_by_label(text("settings.newPasswordFor").replace("{name}", "Paula Peeters")).fill("third-password")
        reset.get_by_role("button", name=text("form.save")).click()
        expect(other.get_by_test_id("settings-message")).to_have_text(
            text("settings.passwordReset").replace("{name}", "Paula Peeters")
        )
        page.get_by_role("link", name=text("nav.sensors")).click()
        expect(page.get_by_test_id("session-notice")).to_have_text(text("login.expired"))
        log_in(page, platform, email, "third-password")

        # She buys a second flat: the syndic ticks it, and her dashboard has its sensors at once.
        with platform.client() as syndic:
            flats = syndic.get("/api/v1/units").json()
            sensors = syndic.get("/api/v1/iot/sensors").json()
        second_flat = next(u for u in flats if u["id"] != unit and any(s["unit_id"] == u["id"] for s in sensors))
        row.get_by_role("button", name=text("settings.changeUnits")).click()
        owned = other.get_by_test_id("owner-units")
        owned.get_by_label(second_flat["name"], exact=False).first.check()
        owned.get_by_role("button", name=text("form.save")).click()
        expect(other.get_by_test_id("settings-message")).to_have_text(
            text("settings.unitsSaved").replace("{name}", "Paula Peeters")
        )
        expect(row).to_contain_text(second_flat["name"])
        page.goto(f"{platform.url}/")
        theirs = [s for s in sensors if s["unit_id"] in (unit, second_flat["id"]) or s["unit_id"] is None]
        expect(page.get_by_test_id("sensor-card")).to_have_count(len(theirs))

        # She sold her flat: the syndic deactivates her (after a confirmation), her session ends, her login is
        # refused; reactivated, she is back.
        other.once("dialog", lambda dialog: dialog.accept())
        row.get_by_role("button", name=text("settings.deactivate")).click()
        expect(row.get_by_test_id("deactivated")).to_be_visible()
        page.goto(f"{platform.url}/alerts")  # her next call is refused: back to the login page
        expect(page.get_by_role("button", name=text("login.submit"))).to_be_visible()
        page.get_by_label(text("login.email")).fill(email)
        page.get_by_label(text("login.password")).fill("third-password")
        page.get_by_role("button", name=text("login.submit")).click()
        expect(page.get_by_role("alert")).to_have_text(text("login.deactivated"))
        row.get_by_role("button", name=text("settings.reactivate")).click()
        expect(row.get_by_test_id("deactivated")).to_have_count(0)
        log_in(page, platform, email, "third-password")
    finally:
        close_page(other)


def test_a_syndic_corrects_a_units_name(page: Page, platform: Platform) -> None:
    typo, fixed = f"App 9.{uuid.uuid4().hex[:4]}", f"App. 9.{uuid.uuid4().hex[:4]}"
    with platform.client() as syndic:
        building = syndic.get("/api/v1/buildings").json()[0]["id"]
        unit = syndic.post("/api/v1/units", json={"building_id": building, "name": typo}).json()
    log_in(page, platform)
    page.goto(f"{platform.url}/settings")
    item = page.get_by_test_id("unit").filter(has_text=typo)
    item.get_by_role("button", name=text("settings.renameUnit")).click()
    edited = page.get_by_test_id("unit").locator("form")  # the one being edited (its name is in an input now)
    edited.get_by_label(text("settings.unitName")).fill(fixed)
    edited.get_by_label(text("form.floor")).fill("9")
    edited.get_by_role("button", name=text("form.save")).click()
    expect(page.get_by_test_id("settings-message")).to_have_text(text("settings.unitSaved").replace("{name}", fixed))
    with platform.client() as syndic:
        saved = next(u for u in syndic.get("/api/v1/units").json() if u["id"] == unit["id"])
    assert (saved["name"], saved["floor"], saved["building_id"]) == (fixed, 9, building)
