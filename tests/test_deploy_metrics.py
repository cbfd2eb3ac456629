"""The Grafana dashboard and Prometheus alert rules in deploy/ name only metrics the services expose."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from prometheus_client import REGISTRY, CollectorRegistry

import vnapi.metrics
import vnapi.stream_gauges
import vnas.metrics
import vncommon.metrics
import vnvs.metrics
from gateway.metrics import GatewayMetrics

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
RULES = DEPLOY / "prometheus" / "alerts.yml"
DASHBOARD = DEPLOY / "grafana" / "vnml-mesh.json"
# Every metric of the mesh starts with one of these; any such word in an expression must be a metric.
METRIC_WORD = re.compile(r"\b(?:vn|vnapi|vnvs|vnas)_[a-z0-9_]+\b")
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"),
            "gauge": ("",), "summary": ("_sum", "_count", "_created")}
DURATION = re.compile(r"^\d+[smhd]$")
_LOADED = (vnapi.metrics, vnapi.stream_gauges, vnas.metrics, vncommon.metrics, vnvs.metrics)  # registered


def exposed_names() -> set[str]:
    names: set[str] = set()
    registries: list[CollectorRegistry] = [REGISTRY, GatewayMetrics().registry]
    for registry in registries:
        for family in registry.collect():
            names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
    return names


def rule_expressions() -> list[str]:
    document = yaml.safe_load(RULES.read_text())
    return [rule["expr"] for group in document["groups"] for rule in group["rules"]]


def dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def test_alert_rules_are_well_formed() -> None:
    document = yaml.safe_load(RULES.read_text())
    assert isinstance(document["groups"], list) and document["groups"]
    alerts = []
    for group in document["groups"]:
        assert group["name"] and group["rules"]
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
            assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", rule["alert"]), rule["alert"]
            assert rule["labels"]["severity"] in ("warning", "critical")
            assert rule["annotations"]["summary"]
            assert "for" not in rule or DURATION.match(rule["for"]), rule
            assert rule["expr"].count("(") == rule["expr"].count(")"), rule["expr"]
            alerts.append(rule["alert"])
    assert len(alerts) == len(set(alerts))
    # The alerts the operators asked for: stream lag, dead letters, retry rate, sync latency, NOT_SERVING.
    assert {"VnStreamLagging", "VnDeadLetters", "VnTaskRetryRateHigh", "VnSyncLatencyHigh", "VnNotServing"} <= set(
        alerts)


def test_every_metric_the_rules_and_the_dashboard_name_exists() -> None:
    exposed = exposed_names()
    expressions = rule_expressions() + dashboard_expressions()
    for expr in expressions:
        named = set(METRIC_WORD.findall(expr))
        assert named, f"no mesh metric in {expr!r}"
        missing = named - exposed
        assert not missing, f"{expr!r} names metrics no service exposes: {sorted(missing)}"


def test_the_check_notices_an_unknown_metric() -> None:
    assert "vn_no_such_metric" not in exposed_names()
    assert "vnapi_submissions_total" in exposed_names() and "vnapi_submissions" not in METRIC_WORD.findall(
        "rate(vnapi_submissions_total[5m])")


def test_dashboard_panels_are_distinct_and_query_prometheus() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)) and dashboard["uid"]
    assert all(panel["datasource"]["type"] == "prometheus" for panel in dashboard["panels"])
