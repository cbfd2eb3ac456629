"""TaskService.ExecuteTask over a real gRPC server on 127.0.0.1 port 0."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.vnas.conftest import TASK_XML, price_of, write_script
from vn.v1 import task_pb2, task_pb2_grpc
from vnas.executors.script import ScriptExecutor
from vnas.servicer import SERVICE_NAME, add_task_service
from vncommon.grpcutil import ServiceServer, create_channel, decode_error

MAX_BYTES = 11 * 1024 * 1024


@pytest.fixture
async def task_stub(tmp_path: Path) -> AsyncIterator[task_pb2_grpc.TaskServiceStub]:
    script = write_script(tmp_path, 'if [ "$VN_TASK_ID" = "bad" ]; then echo oops >&2; exit 2; fi; echo 77.777')
    server = ServiceServer(MAX_BYTES, [SERVICE_NAME])
    add_task_service(server.server, ScriptExecutor(script, 5.0, dict(os.environ)))
    port = server.bind("127.0.0.1:0")
    await server.start()
    channel = create_channel(f"127.0.0.1:{port}", MAX_BYTES)
    yield task_pb2_grpc.TaskServiceStub(channel)
    await channel.close()
    await server.stop(0)


def request(task_id: str = "1", xml: bytes = TASK_XML) -> task_pb2.ExecuteTaskRequest:
    return task_pb2.ExecuteTaskRequest(request_id="req-1", group_index=0, task_id=task_id,
                                       valuation_name="bond", attempt=1, task_xml=xml)


async def test_execute_task_runs_the_script_and_returns_the_normalised_result(
    task_stub: task_pb2_grpc.TaskServiceStub,
) -> None:
    response = await task_stub.ExecuteTask(request(), timeout=10)
    assert response.status == task_pb2.TASK_OUTCOME_STATUS_COMPLETED
    assert price_of(response.result_xml) == "77.78"
    assert response.error == ""


async def test_execute_task_reports_a_failed_script_as_a_failed_outcome(
    task_stub: task_pb2_grpc.TaskServiceStub,
) -> None:
    response = await task_stub.ExecuteTask(request(task_id="bad"), timeout=10)
    assert response.status == task_pb2.TASK_OUTCOME_STATUS_FAILED
    assert "exit code 2" in response.error and "oops" in response.error
    assert response.result_xml == b""


async def test_execute_task_refuses_malformed_task_xml_with_its_position(
    task_stub: task_pb2_grpc.TaskServiceStub,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await task_stub.ExecuteTask(request(xml=b"<vnml>\n<project>"), timeout=10)
    error = decode_error(caught.value)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.reason == "MALFORMED_XML"
    assert error.metadata["line"] == "2"


async def test_execute_task_refuses_an_empty_task(task_stub: task_pb2_grpc.TaskServiceStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await task_stub.ExecuteTask(request(xml=b""), timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_the_server_answers_health_checks_for_the_task_service(tmp_path: Path) -> None:
    server = ServiceServer(MAX_BYTES, [SERVICE_NAME])
    add_task_service(server.server, ScriptExecutor(write_script(tmp_path, "echo 1"), 5.0, {}))
    port = server.bind("127.0.0.1:0")
    await server.start()
    channel = create_channel(f"127.0.0.1:{port}", MAX_BYTES)
    try:
        health = health_pb2_grpc.HealthStub(channel)
        reply = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        await channel.close()
        await server.stop(0)
