"""What the schema validators of `make check-deploy` cannot see: the release files agree with the code.

Commands are console scripts of the package, every setting they pass is one a service reads, each
Deployment's termination grace covers the service's shutdown grace, probes hit the port the service
listens on, the headless Service names in the addresses exist, and no Secret holds a real value.
"""

from __future__ import annotations

import functools
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
BASE = DEPLOY / "k8s" / "base"
OVERLAYS = sorted(path for path in (DEPLOY / "k8s" / "overlays").iterdir() if path.is_dir())
SOURCE_PACKAGES = ("vncommon", "vnapi", "vnvs", "vnas", "gateway", "vnclient")
# Settings of the Redis Cluster and scale-out work (SPEC section 13) that the manifests already carry.
SCALE_OUT_SETTINGS = {"REDIS_MODE", "STREAM_SHARDS", "VNVS_MAX_INFLIGHT_BYTES", "VNAS_SCRIPT_MODE",
                      "VNAS_EXECUTOR_PROCESSES"}
GRACE_SETTING = {"vnapi": "VNAPI_SHUTDOWN_GRACE_MS", "vnvs": "VNVS_SHUTDOWN_GRACE_MS",
                 "vnas": "VNAS_SHUTDOWN_GRACE_MS", "gateway": "GATEWAY_SHUTDOWN_GRACE_MS"}
# Room after the service's own grace for the hand back, closing pools and a slow Redis.
MARGIN_S = 10
GRPC_SERVICES = ("vnapi", "vnvs", "vnas")


def read_env_file(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if line.strip() and not line.startswith("#"))
    return {name.strip(): value.strip() for name, value in pairs}


@functools.cache
def base_objects() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    objects: list[dict[str, Any]] = []
    for resource in kustomization["resources"]:
        objects.extend(doc for doc in yaml.safe_load_all((BASE / resource).read_text()) if doc)
    return objects


def of_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {obj["metadata"]["name"]: obj for obj in base_objects() if obj["kind"] == kind}


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return only


@functools.cache
def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def console_scripts() -> set[str]:
    return set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"])


@functools.cache
def settings_read_by_code() -> set[str]:
    """Every "UPPER_CASE" string literal in the services' code: the names their settings helpers read."""
    names: set[str] = set()
    for package in SOURCE_PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            names.update(re.findall(r"[\"']([A-Z][A-Z0-9_]{2,})[\"']", path.read_text()))
    return names


CONFIG = read_env_file(BASE / "config.env")


def test_every_command_is_a_console_script_of_the_package() -> None:
    scripts = console_scripts()
    commands = {service["command"][0] for service in compose()["services"].values() if "command" in service
                and service.get("image", "").startswith("vnml")}
    commands |= {container(deployment)["args"][0] for deployment in of_kind("Deployment").values()}
    cmd = re.search(r'^CMD \["([^"]+)"', (DEPLOY / "Dockerfile").read_text(), re.MULTILINE)
    health = re.search(r'^HEALTHCHECK .* CMD \["([^"]+)"', (DEPLOY / "Dockerfile").read_text(), re.MULTILINE)
    assert cmd is not None and health is not None
    commands |= {cmd.group(1), health.group(1)}
    assert commands >= {"vnapi", "vnvs", "vnas", "vn-gateway", "vn-health"}
    assert commands <= scripts, f"not console scripts in pyproject.toml: {sorted(commands - scripts)}"


@pytest.mark.parametrize("env_file", [BASE / "config.env", *(overlay / "config.env" for overlay in OVERLAYS)],
                         ids=lambda path: str(path.relative_to(DEPLOY)))
def test_every_setting_in_the_config_map_is_read_by_a_service(env_file: Path) -> None:
    unknown = set(read_env_file(env_file)) - settings_read_by_code() - SCALE_OUT_SETTINGS
    assert not unknown, f"{env_file.name} sets variables no service reads (a typo?): {sorted(unknown)}"


def test_every_setting_in_compose_is_read_by_a_service() -> None:
    names = {name for service in compose()["services"].values() if service.get("image", "").startswith("vnml")
             for name in service["environment"]}
    unknown = names - settings_read_by_code() - SCALE_OUT_SETTINGS
    assert not unknown, f"compose.yaml sets variables no service reads (a typo?): {sorted(unknown)}"


@pytest.mark.parametrize("name", sorted(GRACE_SETTING))
def test_termination_grace_covers_the_shutdown_grace(name: str) -> None:
    spec = of_kind("Deployment")[name]["spec"]["template"]["spec"]
    pre_stop = container(of_kind("Deployment")[name])["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    needed = int(CONFIG[GRACE_SETTING[name]]) / 1000 + int(pre_stop[1]) + MARGIN_S
    assert spec["terminationGracePeriodSeconds"] >= needed, (
        f"{name}: terminationGracePeriodSeconds {spec['terminationGracePeriodSeconds']} < {needed} "
        f"({GRACE_SETTING[name]} + preStop + {MARGIN_S} s): pods would be killed mid hand back")


@pytest.mark.parametrize("name", sorted(GRACE_SETTING))
def test_compose_stop_grace_covers_the_shutdown_grace(name: str) -> None:
    service = compose()["services"][name]
    grace_ms = int(service["environment"][GRACE_SETTING[name]])
    stop_grace = re.fullmatch(r"(\d+)s", service["stop_grace_period"])
    assert stop_grace is not None
    assert int(stop_grace.group(1)) >= grace_ms / 1000 + MARGIN_S


@pytest.mark.parametrize("name", GRPC_SERVICES)
def test_grpc_probes_ask_the_port_the_service_listens_on(name: str) -> None:
    main = container(of_kind("Deployment")[name])
    port = int(CONFIG["GRPC_PORT"])
    assert {"name": "grpc", "containerPort": port} in main["ports"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert main[probe]["grpc"]["port"] == port, f"{name} {probe}"


def test_compose_and_image_listen_where_the_health_check_asks() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert f"GRPC_PORT={CONFIG['GRPC_PORT']}" in dockerfile
    for name in GRPC_SERVICES:
        assert compose()["services"][name]["environment"]["GRPC_PORT"] == CONFIG["GRPC_PORT"]


@pytest.mark.parametrize(("setting", "component"), [("VNVS_ADDRESS", "vnvs"), ("VNAPI_ADDRESS", "vnapi")])
def test_balanced_addresses_name_a_headless_service(setting: str, component: str) -> None:
    namespace = yaml.safe_load((BASE / "kustomization.yaml").read_text())["namespace"]
    match = re.fullmatch(r"dns:///([a-z0-9-]+)\.([a-z0-9-]+)\.svc\.cluster\.local:(\d+)", CONFIG[setting])
    assert match is not None, f"{setting}={CONFIG[setting]!r} is not dns:///<service>.<namespace>.svc..."
    service_name, service_namespace, port = match.groups()
    service = of_kind("Service")[service_name]["spec"]
    assert service_namespace == namespace
    assert service["clusterIP"] == "None", "client-side balancing needs every pod address: a headless Service"
    assert service["selector"]["app.kubernetes.io/component"] == component
    assert int(port) in {p["port"] for p in service["ports"]}


def test_secrets_hold_only_placeholders() -> None:
    secrets = list(of_kind("Secret").values())
    for overlay in OVERLAYS:
        secrets += [doc for path in overlay.glob("*.yaml") for doc in yaml.safe_load_all(path.read_text())
                    if doc and doc.get("kind") == "Secret"]
    assert secrets
    for secret in secrets:
        assert "data" not in secret, "placeholders go in stringData, readable"
        for key, value in secret["stringData"].items():
            assert value == "" or "CHANGE-ME" in value, f"{secret['metadata']['name']}.{key} looks like a real value"


def test_settings_that_hold_secrets_stay_out_of_the_config_map() -> None:
    for env_file in [BASE / "config.env", *(overlay / "config.env" for overlay in OVERLAYS)]:
        names = set(read_env_file(env_file))
        assert not names & {"REDIS_URL", "GRPC_API_TOKENS", "GATEWAY_API_TOKENS", "VN_API_TOKEN"}, env_file
