"""The Prometheus rules, scrape configuration and Grafana dashboard parse, and query only metrics that a running
worker and a running API really export (scraped from their live /metrics)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from koprogo_iot.bench.services import IngestWorker
from tests.conftest import ENCRYPTION_KEY, Mosquitto, eventually, free_port

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "koprogo-rules.yml"
SCRAPE = ROOT / "deploy" / "prometheus" / "prometheus.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "koprogo-iot.json"
PROMETHEUS_OWN = {"up"}  # series Prometheus makes itself for each target


def rule_expressions() -> dict[str, str]:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return {rule["alert"]: rule["expr"] for group in groups for rule in group["rules"]}


def dashboard_expressions() -> dict[str, str]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return {
        f"{panel['title']} / {target['refId']}": target["expr"]
        for panel in dashboard["panels"]
        for target in panel["targets"]
    }


def metric_names(expr: str) -> set[str]:
    """The series an expression selects: ours all start with koprogo_; `up` is Prometheus's."""
    return set(re.findall(r"\bkoprogo_[a-z0-9_]+", expr)) | {n for n in PROMETHEUS_OWN if re.search(rf"\b{n}\{{", expr)}


def test_rules_and_scrape_configuration_parse() -> None:
    rules = rule_expressions()
    for alert in (
        "KoproGoIngestionStalled",
        "KoproGoDeadLetterRate",
        "KoproGoEndToEndLatencyHigh",
        "KoproGoDatabaseCommitSlow",
        "KoproGoBrokerUnreachable",
        "KoproGoNotifierBacklog",
        "KoproGoRollupLag",
    ):
        assert metric_names(rules[alert]), alert
    scrape = yaml.safe_load(SCRAPE.read_text(encoding="utf-8"))
    assert scrape["rule_files"] == [RULES.name]
    [job] = scrape["scrape_configs"]
    assert job["kubernetes_sd_configs"][0]["role"] == "pod"
    for expr in rules.values():  # balanced, as PromQL needs: a truncated expression fails here
        assert expr.count("(") == expr.count(")") and expr.count("[") == expr.count("]"), expr


def test_the_dashboard_has_the_panels_operators_need() -> None:
    titles = {json_title.split(" / ")[0] for json_title in dashboard_expressions()}
    assert {
        "Ingest rate",
        "Sensor-to-stored latency",
        "Rejected messages by reason",
        "Alerts announced by severity",
        "Notifications sent and failed",
    } <= titles


@pytest.fixture
async def exported(mosquitto: Mosquitto, postgres_url: str, tmp_path: Path) -> AsyncIterator[set[str]]:
    """Every sample name a running worker and a running API expose at /metrics."""
    env = {
        "KOPROGO_MODE": "production",
        "KOPROGO_SECRET_KEY": secrets.token_urlsafe(40),
        "KOPROGO_ENCRYPTION_KEY": ENCRYPTION_KEY,
        "KOPROGO_DATABASE_URL": postgres_url,
        "KOPROGO_MQTT_URL": mosquitto.server.url,
    }
    worker = IngestWorker(env, f"metrics-{secrets.token_hex(3)}", tmp_path / "worker.log")
    await asyncio.to_thread(worker.start)
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KOPROGO_")}
    api = subprocess.Popen(
        [sys.executable, "-m", "koprogo_iot.cli", "api", "--http-port", str(port)],
        env=clean | env | {"KOPROGO_MQTT_ADMIN_URL": mosquitto.server.admin_url},
        stderr=subprocess.DEVNULL,
    )
    try:
        async with httpx.AsyncClient(timeout=5) as client:

            async def scrape(url: str) -> str:
                try:
                    response = await client.get(url)
                except httpx.TransportError:
                    return ""
                return response.text if response.status_code == 200 else ""

            api_text = await eventually(lambda: scrape(f"http://127.0.0.1:{port}/metrics"), timeout=60)
            # The API's jobs report from their first run: wait until the rollups job is among them.
            api_text = await eventually(
                lambda: _containing(scrape(f"http://127.0.0.1:{port}/metrics"), 'job="rollups"'), timeout=30
            )
            worker_text = await eventually(lambda: scrape(worker.metrics_url), timeout=30)
            ready = await client.get(f"http://127.0.0.1:{port}/readyz")
        assert ready.status_code == 200, ready.text
        names = set()
        for text in (api_text, worker_text):
            names |= {s.name for family in text_string_to_metric_families(text) for s in family.samples}
        yield names
    finally:
        api.terminate()
        await asyncio.to_thread(api.wait, 30)
        await asyncio.to_thread(worker.stop)


async def _containing(text: asyncio.Future[str] | object, needle: str) -> str:
    body = await text  # type: ignore[misc]
    return body if needle in body else ""


@pytest.mark.mosquitto
@pytest.mark.postgres
async def test_rules_and_dashboard_query_only_exported_metrics(exported: set[str]) -> None:
    queried = {f"rule {name}": metric_names(expr) for name, expr in rule_expressions().items()} | {
        f"panel {name}": metric_names(expr) for name, expr in dashboard_expressions().items()
    }
    missing = {where: names - exported - PROMETHEUS_OWN for where, names in queried.items()}
    assert not {where: names for where, names in missing.items() if names}
    assert all(queried.values()), "an expression queries no metric"


def test_the_name_check_can_fail() -> None:
    assert metric_names("rate(koprogo_not_a_metric_total[5m])") == {"koprogo_not_a_metric_total"}
