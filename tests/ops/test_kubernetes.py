"""The Kubernetes manifests: both overlays rendered by kustomize, validated against the Kubernetes schemas, and
checked for what the platform needs (settings that exist, probes on our endpoints, stable worker client ids)."""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from koprogo_iot.cli.options import variables

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"
OVERLAYS = ["dev", "prod"]
SHIPPED_BROKER_CONF = ROOT / "src" / "koprogo_iot" / "broker" / "mosquitto.conf"


def kustomize_command() -> list[str]:
    """kustomize, or kubectl's built-in copy of it (`kubectl kustomize`): both render without a cluster."""
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    pytest.fail("rendering the manifests needs kustomize or kubectl on PATH (scripts/ensure-test-services)")


@functools.cache
def render(overlay: str) -> tuple[dict[str, Any], ...]:
    result = subprocess.run(
        [*kustomize_command(), str(KUBERNETES / "overlays" / overlay)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return tuple(d for d in yaml.safe_load_all(result.stdout) if d)


def of_kind(overlay: str, kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in render(overlay) if d["kind"] == kind}


def pod_specs(overlay: str) -> dict[str, dict[str, Any]]:
    workloads = {}
    for kind in ("Deployment", "StatefulSet"):
        workloads |= {name: d["spec"]["template"]["spec"] for name, d in of_kind(overlay, kind).items()}
    return workloads


def koprogo_containers(overlay: str) -> list[dict[str, Any]]:
    return [
        c
        for spec in pod_specs(overlay).values()
        for c in spec.get("initContainers", []) + spec["containers"]
        if "koprogo-iot" in c["image"]
    ]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_rendered_manifests_validate_against_the_kubernetes_schemas(overlay: str) -> None:
    documents = render(overlay)
    kinds = {d["kind"] for d in documents}
    assert {"Deployment", "StatefulSet", "Service", "ConfigMap", "NetworkPolicy", "PodDisruptionBudget"} <= kinds
    assert "HorizontalPodAutoscaler" in kinds
    version = kubernetes_validate.latest_version()
    for document in documents:
        kubernetes_validate.validate(document, version, strict=True)  # raises on any error, naming it


def test_the_validator_does_catch_a_broken_manifest() -> None:
    deployment = dict(of_kind("prod", "Deployment")["api"])
    deployment["spec"] = dict(deployment["spec"], replicas="three")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, kubernetes_validate.latest_version(), strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_variable_the_manifests_set_is_a_setting(overlay: str) -> None:
    known = {v.env for v in variables()}
    config_maps, secrets = of_kind(overlay, "ConfigMap"), of_kind(overlay, "Secret")
    set_here: set[str] = set()
    for container in koprogo_containers(overlay):
        set_here |= {e["name"] for e in container.get("env", [])}
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                set_here |= set(config_maps[source["configMapRef"]["name"]]["data"])
            elif source["secretRef"]["name"] in secrets:  # prod: created outside the manifests
                set_here |= set(secrets[source["secretRef"]["name"]]["data"])
    assert set_here, "no KoproGo container found"
    assert set_here <= known, f"not settings: {sorted(set_here - known)}"


def test_dev_secrets_hold_what_production_must_provide() -> None:
    [secrets] = [d for name, d in of_kind("dev", "Secret").items() if name.startswith("koprogo-secrets")]
    assert set(secrets["data"]) == {
        "KOPROGO_SECRET_KEY",
        "KOPROGO_ENCRYPTION_KEY",
        "KOPROGO_DATABASE_URL",
        "KOPROGO_MQTT_URL",
        "KOPROGO_MQTT_ADMIN_URL",
    }
    assert not of_kind("prod", "Secret"), "production secrets must not be in the repository"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_workers_and_api_are_probed_on_their_health_endpoints(overlay: str) -> None:
    specs = pod_specs(overlay)
    for name, port in (("api", "http"), ("ingest", "metrics")):
        [container] = specs[name]["containers"]
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port}
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port}
        assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
        assert specs[name]["securityContext"]["runAsNonRoot"] is True


def test_workers_are_a_statefulset_with_stable_client_ids_and_a_disruption_budget() -> None:
    ingest = of_kind("prod", "StatefulSet")["ingest"]
    assert ingest["spec"]["replicas"] == 3
    [container] = ingest["spec"]["template"]["spec"]["containers"]
    client_id = {e["name"]: e for e in container["env"]}["KOPROGO_MQTT_CLIENT_ID"]
    assert client_id["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"  # ingest-0, ingest-1, ingest-2
    budget = of_kind("prod", "PodDisruptionBudget")["ingest"]
    assert budget["spec"]["selector"] == ingest["spec"]["selector"] and budget["spec"]["maxUnavailable"] == 1
    # The worker exits within 10 s of SIGTERM (tests/faults/test_sigterm.py): the grace period leaves room.
    assert ingest["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 10
    assert of_kind("prod", "HorizontalPodAutoscaler")["api"]["spec"]["minReplicas"] == 3


def test_only_workers_api_jobs_and_the_broker_init_reach_the_database() -> None:
    policies = of_kind("prod", "NetworkPolicy")
    assert policies["default-deny-ingress"]["spec"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    [rule] = policies["database-from-workers-and-api"]["spec"]["ingress"]
    [source] = rule["from"]
    [expression] = source["podSelector"]["matchExpressions"]
    assert expression["values"] == ["api", "jobs", "ingest", "broker"]
    components = {
        name: spec_labels["app.kubernetes.io/component"]
        for name, spec_labels in (
            (n, d["spec"]["template"]["metadata"]["labels"])
            for kind in ("Deployment", "StatefulSet")
            for n, d in of_kind("prod", kind).items()
        )
    }
    assert components["api"] == "api" and components["ingest"] == "ingest" and components["mosquitto"] == "broker"
    assert components["jobs"] == "jobs"


def test_the_jobs_run_once_apart_from_the_api_replicas() -> None:
    deployments = of_kind("prod", "Deployment")
    [api] = deployments["api"]["spec"]["template"]["spec"]["containers"]
    assert {e["name"]: e.get("value") for e in api["env"]}["KOPROGO_JOBS_IN_API"] == "false"
    assert deployments["jobs"]["spec"]["replicas"] == 1
    [jobs] = deployments["jobs"]["spec"]["template"]["spec"]["containers"]
    assert jobs["args"] == ["jobs"] and jobs["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_the_broker_runs_our_configuration_with_its_logins_and_tls() -> None:
    mosquitto = of_kind("prod", "StatefulSet")["mosquitto"]["spec"]["template"]["spec"]
    [init] = mosquitto["initContainers"]
    assert init["args"] == ["broker", "config", "--hold-devices", "--output", "/mosquitto/data/dynamic-security.json"]
    certs = {v["name"]: v for v in mosquitto["volumes"]}["certs"]["secret"]
    assert certs["secretName"] == "mosquitto-tls"
    assert {i["path"] for i in certs["items"]} == {"server.pem", "server.key"}
    assert of_kind("prod", "Service")["mosquitto-tls"]["spec"]["type"] == "LoadBalancer"
    [config] = [d for name, d in of_kind("prod", "ConfigMap").items() if name.startswith("mosquitto-config")]
    rendered = config["data"]["mosquitto.conf"].splitlines()
    shipped = SHIPPED_BROKER_CONF.read_text(encoding="utf-8").splitlines()
    assert len(rendered) == len(shipped)
    changed = {(a, b) for a, b in zip(shipped, rendered, strict=True) if a != b}
    # Only the paths of the eclipse-mosquitto image differ from the shipped configuration.
    assert {b for _, b in changed} == {
        "plugin /usr/lib/mosquitto_dynamic_security.so",
        "plugin_opt_config_file /mosquitto/data/dynamic-security.json",
        "certfile /mosquitto/certs/server.pem",
        "keyfile /mosquitto/certs/server.key",
        "persistence_location /mosquitto/data/",
    }
