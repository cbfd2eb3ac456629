"""The gateway's OpenAPI document holds up under a fuzzer: schemathesis, with every check, against a real
gateway over a real vnapi, vnvs and vnas, finds no server error, no undocumented answer and no body that
breaks its schema. The document itself is valid OpenAPI 3.0, and every error body matches its schema."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate

from gateway.errors import BearerRejected, error_response, processing_failed
from gateway.openapi import build_document
from gateway.settings import GatewaySettings
from tests.conftest import RedisServer
from tests.e2e.helpers import simple_request
from tests.security.auth_support import GRPC_TOKENS, REST_TOKEN, RSS_BOUND_MIB, RunningMesh, running_mesh
from tests.security.memory import peak_rss_mib
from vncommon.errors import (
    InvalidArgument,
    MalformedXml,
    RequestExpired,
    RequestFailed,
    RequestNotFound,
    ResultNotReady,
    VnError,
)

pytestmark = pytest.mark.timeout(600)
CONFIG = Path(__file__).with_name("schemathesis.toml")
MAX_EXAMPLES = 25  # per operation and phase: the run stays well under a minute on two cores
OPERATIONS = 13
# A hang guard, not a speed check (each response's own bound is --max-response-time): the run takes
# about a minute on a quiet two-core machine and four on one that runs four times slower.
FUZZ_BOUND_S = 40.0 * OPERATIONS
SEED = "20261"  # fixed, so that a failure in CI reproduces with the same command


@pytest.fixture(scope="module")
def mesh(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningMesh]:
    with running_mesh(redis_server.url, tmp_path_factory.mktemp("fuzz-mesh"),
                      GRPC_API_TOKENS=",".join(GRPC_TOKENS), GATEWAY_API_TOKENS=REST_TOKEN,
                      SYNC_WAIT_TIMEOUT_MS="5000") as running:
        yield running


def _schemathesis(mesh: RunningMesh, workdir: Path) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).with_name("schemathesis")), "--no-color", "--config-file", str(CONFIG),
               "run", f"{mesh.local.http}/openapi.json", "--checks", "all", "--max-examples", str(MAX_EXAMPLES),
               "--seed", SEED, "--workers", "1", "--header", f"Authorization: Bearer {REST_TOKEN}",
               "--request-timeout", "15", "--max-response-time", "10"]
    # cwd: schemathesis and hypothesis keep their caches in the working directory.
    return subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=FUZZ_BOUND_S,
                          check=False)


def test_schemathesis_with_all_checks_finds_no_server_error_or_schema_violation(
    mesh: RunningMesh, tmp_path: Path
) -> None:
    started = time.perf_counter()
    run = _schemathesis(mesh, tmp_path)
    elapsed = time.perf_counter() - started
    report = run.stdout + run.stderr
    assert run.returncode == 0, report[-6000:] + mesh.local.log_tail()
    assert "No issues found" in report, report[-3000:]
    generated = re.search(r"(\d+) generated", report)
    assert generated is not None and int(generated.group(1)) >= 100, report[-2000:]  # it did probe
    assert f"{OPERATIONS} selected / {OPERATIONS} total" in report  # every operation, none filtered away
    print(f"measured: schemathesis run {elapsed:.0f} s")
    request = urllib.request.Request(f"{mesh.local.http}/valuation?sync=Y", data=simple_request(), method="POST",
                                     headers={"Content-Type": "application/xml",
                                              "Authorization": f"Bearer {REST_TOKEN}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
    for name, pid in mesh.local.pids().items():
        assert peak_rss_mib(pid) < RSS_BOUND_MIB, name


DOCUMENT = build_document(GatewaySettings(api_tokens=("x" * 16,)))


def _schema_of(method: str, path: str, status: int) -> dict[str, Any]:
    operation = DOCUMENT["paths"][path][method]
    response = operation["responses"][str(status)]
    if "$ref" in response:
        response = DOCUMENT["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    return {**response["content"]["application/json"]["schema"], "components": DOCUMENT["components"]}


def test_the_document_is_valid_openapi_3() -> None:
    validate(DOCUMENT)


@pytest.mark.parametrize(("method", "path", "error"), [
    ("post", "/valuation", MalformedXml("not well-formed", 3, 7)),
    ("post", "/valuation", InvalidArgument("sync must be Y or N")),
    ("post", "/valuation", BearerRejected("Missing or invalid bearer token")),
    ("get", "/valuation/{requestId}/results", ResultNotReady("running", {"status": "started"})),
    ("get", "/valuation/{requestId}/results", RequestNotFound("no such request")),
    ("get", "/valuation/{requestId}/results", RequestExpired("purged")),
    ("get", "/valuation/{requestId}/results", RequestFailed("failed", {"detail": '{"reason": "X"}'})),
    ("get", "/valuation/{requestId}/status", RequestNotFound("no such request")),
    ("get", "/healthz", InvalidArgument("the X-Probe header is not valid UTF-8")),
    ("post", "/valuation", VnError("boom")),
])
def test_every_error_body_the_gateway_builds_matches_its_documented_schema(
    method: str, path: str, error: VnError
) -> None:
    response = error_response(error, "req-1")
    schema = _schema_of(method, path, response.status)
    assert response.text is not None
    OAS30Validator(schema).validate(json.loads(response.text))


def test_a_failed_sync_submission_body_matches_its_documented_schema() -> None:
    response = processing_failed("req-1", '{"reason": "TASK_RETRIES_EXHAUSTED"}')
    assert response.text is not None
    OAS30Validator(_schema_of("post", "/valuation", 500)).validate(json.loads(response.text))
