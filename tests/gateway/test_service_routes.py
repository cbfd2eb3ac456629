"""Health, bearer tokens, OpenAPI document, metrics, unknown routes and the request log."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from openapi_spec_validator import validate

from gateway.openapi import build_document
from gateway.settings import GatewaySettings
from tests.conftest import free_port
from tests.gateway.conftest import GatewayFactory
from tests.gateway.scripted import ScriptedVnapi
from vn.v1 import valuation_pb2

TOKEN = "s3cret-token-1"
VNML = b"<vnml/>"
XML = {"Content-Type": "application/xml"}

# Every (method, path, status) the gateway answers with; each must be described in openapi.json.
ANSWERS = [
    ("post", "/valuation", s) for s in (200, 202, 400, 401, 409, 413, 415, 500, 503, 504)
] + [
    ("get", "/valuation/{requestId}/status", s) for s in (200, 401, 404, 500, 503, 504)
] + [
    ("get", "/valuation/{requestId}/results", s) for s in (200, 401, 404, 410, 422, 500, 503, 504)
] + [("get", "/healthz", 200), ("get", "/healthz", 503), ("get", "/openapi.json", 200),
     ("get", "/metrics", 200), ("get", "/metrics", 401)]


async def test_healthz_is_ok_when_redis_and_vnapi_answer(gateway: TestClient[Any, Any]) -> None:
    response = await gateway.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok"}


async def test_healthz_is_503_naming_vnapi_when_vnapi_is_down(
    gateway: TestClient[Any, Any], vnapi: ScriptedVnapi
) -> None:
    await vnapi.stop()
    response = await gateway.get("/healthz")
    assert response.status == 503
    body = await response.json()
    assert (body["status"], body["down"]) == ("unavailable", ["vnapi"])
    assert "vnapi" in body["message"]


async def test_healthz_is_503_naming_vnapi_when_vnapi_reports_not_serving(
    gateway: TestClient[Any, Any], vnapi: ScriptedVnapi
) -> None:
    await vnapi.server.set_serving(False)
    response = await gateway.get("/healthz")
    assert (response.status, (await response.json())["down"]) == (503, ["vnapi"])


async def test_healthz_is_503_naming_redis_when_redis_is_down(make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    response = await gateway.get("/healthz")
    assert response.status == 503
    assert (await response.json())["down"] == ["redis"]


async def test_routes_need_a_bearer_token_when_tokens_are_configured(
    make_gateway: GatewayFactory, vnapi: ScriptedVnapi
) -> None:
    gateway = await make_gateway(api_tokens=("other-token-0", TOKEN))
    for method, path in [("POST", "/valuation"), ("GET", "/valuation/x/status"),
                         ("GET", "/valuation/x/results"), ("GET", "/metrics")]:
        response = await gateway.request(method, path, data=VNML, headers=XML)
        assert response.status == 401, path
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert (await response.json())["message"]
    assert vnapi.service.received == []


@pytest.mark.parametrize("authorization", ["Bearer wrong-token-9", "Basic " + TOKEN, TOKEN, "Bearer"])
async def test_a_wrong_or_malformed_token_is_401(make_gateway: GatewayFactory, authorization: str) -> None:
    gateway = await make_gateway(api_tokens=(TOKEN,))
    response = await gateway.post("/valuation", data=VNML, headers={**XML, "Authorization": authorization})
    assert response.status == 401


async def test_a_configured_token_is_let_through(make_gateway: GatewayFactory, vnapi: ScriptedVnapi) -> None:
    gateway = await make_gateway(api_tokens=("other-token-0", TOKEN))
    vnapi.service.status_answer = valuation_pb2.GetStatusResponse(request_id="r", status=1)
    response = await gateway.get("/valuation/r/status", headers={"Authorization": f"bearer {TOKEN}"})
    assert response.status == 200
    submitted = await gateway.post("/valuation", data=VNML, headers={**XML, "Authorization": f"Bearer {TOKEN}"})
    assert submitted.status == 202


async def test_healthz_and_openapi_need_no_token(make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway(api_tokens=(TOKEN,))
    assert (await gateway.get("/healthz")).status == 200
    assert (await gateway.get("/openapi.json")).status == 200


async def test_openapi_json_is_a_valid_openapi_3_document(gateway: TestClient[Any, Any]) -> None:
    response = await gateway.get("/openapi.json")
    document = await response.json()
    validate(document)
    assert document["openapi"].startswith("3.0")


@pytest.mark.parametrize(("method", "path", "status"), ANSWERS)
def test_openapi_describes_each_answer_of_the_gateway(method: str, path: str, status: int) -> None:
    document = build_document(GatewaySettings(api_tokens=(TOKEN,)))
    validate(document)
    assert str(status) in document["paths"][path][method]["responses"]


async def test_openapi_lists_every_route_the_app_serves(gateway: TestClient[Any, Any]) -> None:
    document = await (await gateway.get("/openapi.json")).json()
    served = {(route.method.lower(), route.resource.canonical)
              for route in gateway.app.router.routes() if route.resource is not None}
    documented = {(method, path) for path, item in document["paths"].items() for method in item}
    assert served == documented


async def test_openapi_states_the_configured_limits(make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway(payload_max_bytes=4096)
    document = await (await gateway.get("/openapi.json")).json()
    assert "4096" in document["paths"]["/valuation"]["post"]["requestBody"]["description"]


async def test_metrics_count_requests_by_route_and_status(
    gateway: TestClient[Any, Any], vnapi: ScriptedVnapi
) -> None:
    await gateway.post("/valuation", data=VNML, headers=XML)
    response = await gateway.get("/metrics")
    text = await response.text()
    assert response.status == 200
    assert 'vn_gateway_http_requests_total{method="POST",route="/valuation",status="202"} 1.0' in text
    assert 'vn_gateway_submissions_total{mode="async",outcome="accepted"} 1.0' in text


async def test_unknown_routes_and_methods_answer_json_with_a_message(gateway: TestClient[Any, Any]) -> None:
    missing = await gateway.get("/nowhere")
    assert (missing.status, (await missing.json())["message"]) == (404, "Not Found")
    wrong = await gateway.get("/valuation")
    assert wrong.status == 405
    assert (await wrong.json())["message"]
    assert "POST" in wrong.headers["Allow"]


async def test_each_request_writes_one_log_line_with_ids_and_no_body(
    gateway: TestClient[Any, Any], vnapi: ScriptedVnapi, caplog: pytest.LogCaptureFixture
) -> None:
    secret = b"<vnml><secretPayload/></vnml>"
    with caplog.at_level(logging.INFO, logger="gateway.requests"):
        await gateway.post("/valuation", data=secret, headers={**XML, "X-Trace-Id": "trace-log"})
    [record] = [r for r in caplog.records if r.name == "gateway.requests"]
    fields = record.fields  # type: ignore[attr-defined]
    assert {k: fields[k] for k in ("method", "path", "status", "requestId", "traceId")} == {
        "method": "POST", "path": "/valuation", "status": 202, "requestId": "req-1", "traceId": "trace-log"
    }
    assert isinstance(fields["ms"], float)
    assert "secretPayload" not in caplog.text
