"""Real local receivers for the notification channels, and alerts inserted as the alerting engine stores them.

- `smtp`: an aiosmtpd server on a free port; apprise reaches it with `mailto://` (plain SMTP, no TLS, no login).
- `receiver`: an HTTP server on a free port playing two self-hosted providers apprise supports: ntfy (push,
  `POST /` with a JSON body naming the topic) and SMSEagle (SMS gateway, JSON-RPC `POST /jsonrpc/sms`).
  It records every request; set `failing = True` to answer HTTP 500 as a broken provider would.
"""

from __future__ import annotations

import dataclasses
import email
import email.policy
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from uuid import UUID

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from koprogo_iot.domain.alerts import AlertSeverity, AlertType, IoTAlert, RaiseAlert
from koprogo_iot.domain.notices import Channel
from koprogo_iot.domain.sensors import IoTSensor
from koprogo_iot.notify.notifier import Notifier
from koprogo_iot.storage.ports import Storage
from tests.api.conftest import Api, api  # noqa: F401  (the API fixture, for the API tests here)
from tests.conftest import free_port

PUBLIC_URL = "https://koprogo.test"
SENDER = "alerts@koprogo.test"


# --- SMTP


@dataclass
class Mail:
    sender: str
    recipients: list[str]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def body(self) -> str:
        part = self.message.get_body(("plain",))
        assert part is not None
        return str(part.get_content())  # type: ignore[attr-defined]


@dataclass
class SmtpServer:
    port: int
    received: list[Mail] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"mailto://127.0.0.1:{self.port}?from={SENDER}&to={{to}}"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802 (aiosmtpd)
        content = envelope.content if isinstance(envelope.content, bytes) else str(envelope.content).encode()
        parsed = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.received.append(Mail(str(envelope.mail_from), list(envelope.rcpt_tos), parsed))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer(free_port())
    controller = Controller(server, hostname="127.0.0.1", port=server.port)
    controller.start()
    try:
        yield server
    finally:
        controller.stop()


def closed_smtp_url() -> str:
    """Where no SMTP server listens: a provider that is down."""
    return f"mailto://127.0.0.1:{free_port()}?from={SENDER}&to={{to}}"


# --- HTTP: ntfy and SMSEagle


@dataclass
class Request:
    path: str
    body: dict[str, Any]


class HttpReceiver:
    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.failing = False
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server)
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                receiver.requests.append(Request(self.path, body))
                if receiver.failing:
                    self._answer(500, {"error": "provider down"})
                elif self.path == "/jsonrpc/sms":  # SMSEagle's JSON-RPC API
                    self._answer(200, {"result": {"message_id": len(receiver.requests), "status": "ok"}})
                else:  # ntfy
                    self._answer(200, {"id": uuid.uuid4().hex[:12], "event": "message", "topic": body.get("topic")})

            def _answer(self, code: int, doc: dict[str, Any]) -> None:
                out = json.dumps(doc).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def push_url(self) -> str:
        return f"ntfy://127.0.0.1:{self.port}/{{to}}"

    @property
    def sms_url(self) -> str:
        return f"smseagle://test-token@127.0.0.1:{self.port}/{{to}}"

    @property
    def pushes(self) -> list[dict[str, Any]]:
        return [r.body for r in self.requests if r.path == "/"]

    @property
    def sms(self) -> list[dict[str, Any]]:
        return [r.body["params"] for r in self.requests if r.path == "/jsonrpc/sms"]

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    server = HttpReceiver()
    server.start()
    try:
        yield server
    finally:
        server.stop()


# --- the notifier, and alerts


def make_notifier(
    storage: Storage, smtp: SmtpServer | None = None, receiver: HttpReceiver | None = None, **extra: Any
) -> Notifier:
    urls = {
        Channel.EMAIL: smtp.url if smtp else None,
        Channel.SMS: receiver.sms_url if receiver else None,
        Channel.PUSH: receiver.push_url if receiver else None,
    }
    return Notifier(storage.notifications, platform_urls=urls, public_url=PUBLIC_URL, **extra)


async def insert_alert(
    storage: Storage,
    sensor: IoTSensor,
    at: datetime,
    severity: AlertSeverity = AlertSeverity.CRITICAL,
    value: float | None = 75.0,
    threshold: float | None = 50.0,
    alert_type: AlertType = AlertType.THRESHOLD_EXCEEDED,
) -> UUID:
    """A new active alert, raised through the alerts' lifecycle as detection raises one."""
    alert = IoTAlert(
        organization_id=sensor.organization_id,
        sensor_id=sensor.id,
        building_id=sensor.building_id,
        unit_id=sensor.unit_id,
        alert_type=alert_type,
        severity=severity,
        message=f"{sensor.sensor_id}: {value} {sensor.unit_of_measure}",
        triggered_at=at,
        last_triggered_at=at,
        reading_value=value,
        threshold_value=threshold,
        rule="threshold",
        created_at=at,
    )
    await storage.alerts.apply([RaiseAlert(alert)])
    return alert.id


async def repeat(
    storage: Storage, sensor: IoTSensor, alert_id: UUID, at: datetime, severity: AlertSeverity | None = None
) -> None:
    """The condition occurred again at `at` (and possibly worse): raised again through the lifecycle."""
    alert = await storage.alerts.get(sensor.organization_id, alert_id)
    occurrence = dataclasses.replace(alert, id=uuid.uuid4(), last_triggered_at=at, severity=severity or alert.severity)
    await storage.alerts.apply([RaiseAlert(occurrence)])


def later(start: datetime, **delta: float) -> datetime:
    return start + timedelta(**delta)
