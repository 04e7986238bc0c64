"""Browser tests: Debian's headless Chromium (Playwright) against the real platform, started here in embedded mode.

One browser and one platform for the session (`up --demo` in a thread: embedded broker, ingestion,
API serving the built web application, simulator), on free ports in a temporary data directory, its email
provider a local SMTP server. Devices publish with `mosquitto_pub`, through the broker, like real ones.
Each page test saves a screenshot into $KOPROGO_E2E_ARTIFACTS (default build/e2e-artifacts).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from aiosmtpd.controller import Controller
from playwright.sync_api import Browser, Page, expect, sync_playwright

from koprogo_iot import bootstrap, demo
from koprogo_iot.config import HttpSettings, IngestSettings, MqttSettings, NotifySettings, Settings
from koprogo_iot.domain.clock import utcnow
from tests.conftest import free_port, login_args
from tests.notify.conftest import SmtpServer

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps trying to reach Google's hosts, which this network refuses.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
AXE = ROOT / "web" / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = Path(os.environ.get("KOPROGO_E2E_ARTIFACTS", ROOT / "build" / "e2e-artifacts"))
CATALOGS = {
    lang: json.loads((ROOT / "web/src/lib/i18n" / f"{lang}.json").read_text("utf-8")) for lang in ("fr", "nl", "en")
}
T = TypeVar("T")

pytestmark = pytest.mark.browser


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the browser tests, and run them last: Playwright's sync API holds an event loop in the main thread
    from the session's browser start to its end, where pytest-asyncio's tests could not run theirs."""
    here = Path(__file__).parent
    browser_tests = {id(item) for item in items if Path(str(item.fspath)).is_relative_to(here)}
    for item in items:
        if id(item) in browser_tests:
            item.add_marker(pytest.mark.browser)
    items.sort(key=lambda item: id(item) in browser_tests)  # stable: the order within each part is kept


def text(key: str, lang: str = "fr") -> str:
    """What the application shows for an i18n key."""
    return str(CATALOGS[lang][key])


def english_to_key(label: str, prefix: str) -> str:
    """The i18n key whose English text is `label` (the Gherkin names labels in English)."""
    return next(k for k, v in CATALOGS["en"].items() if k.startswith(prefix) and v == label)


def poll(probe: Callable[[], T], timeout: float = 15.0, interval: float = 0.2) -> T:
    """Call `probe` until it returns something truthy, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s (last value: {result!r})")
        time.sleep(interval)


# --- the platform


@dataclass
class Platform:
    url: str
    running: bootstrap.Running
    smtp: SmtpServer

    @property
    def building_id(self) -> str:
        assert self.running.demo is not None
        return str(self.running.demo.building.id)

    def client(self, email: str = demo.SYNDIC_EMAIL) -> httpx.Client:
        response = httpx.post(f"{self.url}/api/v1/auth/login", json={"email": email, "password": demo.DEMO_PASSWORD})
        response.raise_for_status()
        token = response.json()["access_token"]
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=10)

    def publish(self, topic: str, payload: dict[str, Any] | str) -> None:
        """Publish as a device would, with the real command-line client (QoS 1) and the MQTT login `up --demo`
        prints."""
        body = payload if isinstance(payload, str) else json.dumps(payload)
        device = self.running.device
        assert device is not None and device.username and device.password
        subprocess.run(
            ["mosquitto_pub", *login_args(device), "-q", "1", "-t", topic, "-s"],
            input=body.encode(), check=True, capture_output=True, timeout=10,
        )  # fmt: skip

    def reading(self, topic: str, value: float, **extra: Any) -> None:
        self.publish(topic, {"timestamp": utcnow().isoformat(), "value": value, **extra})


@contextlib.contextmanager
def start_platform(data_dir: Path) -> Iterator[Platform]:
    """`up --demo` in a thread of its own (its own event loop), until the block ends."""
    smtp = SmtpServer(free_port())
    controller = Controller(smtp, hostname="127.0.0.1", port=smtp.port)
    controller.start()
    settings = Settings(
        data_dir=data_dir,
        mqtt=MqttSettings(port=free_port(), client_id="e2e-ingest"),
        http=HttpSettings(port=free_port()),
        ingest=IngestSettings(burst_per_sensor=100_000),  # the benchmark publishes a year of history at once
        notify=NotifySettings(email_url=smtp.url, interval=0.5),
    )
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    found: list[bootstrap.Running] = []
    task: list[asyncio.Task[None]] = []

    def announce(running: bootstrap.Running) -> None:
        found.append(running)
        ready.set()

    async def main() -> None:
        task.append(asyncio.create_task(bootstrap.run_embedded(settings, with_demo=True, on_ready=announce)))
        with contextlib.suppress(asyncio.CancelledError):
            await task[0]

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), name="platform", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 180
        while not ready.wait(0.2):
            # a start-up that failed is reported at once with its error, not as a time-out
            if task and task[0].done() and not task[0].cancelled() and task[0].exception() is not None:
                raise AssertionError("the platform stopped at start-up") from task[0].exception()
            assert time.monotonic() < deadline, "the platform did not start within 180 s"
        yield Platform(found[0].http_url, found[0], smtp)
    finally:
        loop.call_soon_threadsafe(task[0].cancel)
        thread.join(30)
        loop.close()
        controller.stop()


@pytest.fixture(scope="session")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """One platform for every browser test (each start writes the demo's 16 months of history): tests add sensors
    of their own, with ids of their own, and look for what they added."""
    with start_platform(tmp_path_factory.mktemp("platform")) as started:
        yield started


# --- the browser


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def new_page(browser: Browser, width: int = 1280, height: int = 900) -> Page:
    context = browser.new_context(
        viewport={"width": width, "height": height}, locale="fr-BE", timezone_id="Europe/Brussels"
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.on("pageerror", lambda error: PAGE_ERRORS.setdefault(page, []).append(str(error)))
    return page


PAGE_ERRORS: dict[Page, list[str]] = {}


def close_page(page: Page) -> None:
    """Close the page's context; an uncaught error in the page's script fails the test."""
    page.context.close()
    assert PAGE_ERRORS.pop(page, []) == []


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    opened = new_page(browser)
    yield opened
    close_page(opened)


def log_in(page: Page, platform: Platform, email: str = demo.SYNDIC_EMAIL, password: str = demo.DEMO_PASSWORD) -> None:
    page.goto(f"{platform.url}/login")
    page.get_by_label(text("login.email")).fill(email)
    page.get_by_label(text("login.password")).fill(password)
    page.get_by_role("button", name=text("login.submit")).click()
    expect(page.get_by_role("button", name=text("nav.logout"))).to_be_visible()


def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def assert_accessible(page: Page) -> None:
    """axe-core (the npm package the build installed) finds no critical violation on the page as it is."""
    # evaluated through the DevTools protocol, which the page's Content-Security-Policy does not apply to (a
    # <script> tag would be refused, as it should be)
    page.evaluate(AXE.read_text(encoding="utf-8"))
    result = page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations")
    critical = [f"{v['id']}: {v['help']} ({len(v['nodes'])} nodes)" for v in result if v["impact"] == "critical"]
    assert critical == [], critical


def add_sensor(platform: Platform, client: httpx.Client, device: str, **fields: Any) -> dict[str, Any]:
    """A sensor registered through the API, in the demo building."""
    body = {
        "building_id": platform.building_id, "sensor_id": device, "sensor_type": "cold_water",
        "kind": "instantaneous", "manufacturer": "Kamstrup", "model": "flowIQ 2200", "location": f"Riser {device}",
        "unit_of_measure": "L/h", "sampling_interval": 60, **fields,
    }  # fmt: skip
    response = client.post("/api/v1/iot/sensors", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created
