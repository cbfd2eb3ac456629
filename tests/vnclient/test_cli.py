"""The `vn` command against a scripted vnapi: output, exit codes, and one-line errors.

`main` runs its own event loop, so each call runs in a worker thread while the scripted gRPC server
keeps serving on the test's loop.
"""

from __future__ import annotations

import asyncio
import io
import json
import sys
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.gateway.scripted import ScriptedVnapi, event
from vn.v1 import streams_pb2, valuation_pb2
from vnclient import cli
from vnclient.progress import outcome_line
from vncommon.errors import RequestFailed, RequestNotFound, ResultNotReady
from vnvs.hydration import preview

VNML = b'<vnml><project name="p"><group name="g"><valuation name="v"/></group></project></vnml>'
RESPONSE_XML = b'<vnml-response requestId="req-1" status="succeeded"/>'


@pytest.fixture
def request_file(tmp_path: Path) -> Path:
    path = tmp_path / "request.xml"
    path.write_bytes(VNML)
    return path


async def vn(vnapi: ScriptedVnapi, *args: str) -> int:
    return await asyncio.to_thread(cli.main, ["--address", vnapi.address, *args])


def assert_one_line_error(err: str, *words: str) -> None:
    assert err.count("\n") == 1 and err.startswith("vn: "), err
    assert "Traceback" not in err
    for word in words:
        assert word in err


async def test_submit_prints_the_request_id(
    vnapi: ScriptedVnapi, request_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await vn(vnapi, "submit", str(request_file)) == cli.EXIT_OK
    assert capsys.readouterr().out == "req-1\n"
    assert vnapi.service.calls("Submit")[0].request.xml == VNML


async def test_submit_forwards_key_headers_and_trace_id(
    vnapi: ScriptedVnapi, request_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await vn(vnapi, "submit", str(request_file), "--idempotency-key", "k-7", "--header", "X-Desk=rates",
                    "--header", "X-Book=a=b", "--trace-id", "trace-cli")
    assert code == cli.EXIT_OK
    sent = vnapi.service.calls("Submit")[0].request
    assert (sent.idempotency_key, dict(sent.metadata), sent.trace_id) == (
        "k-7", {"X-Desk": "rates", "X-Book": "a=b"}, "trace-cli")


async def test_submit_sync_writes_the_response_xml_to_stdout(
    vnapi: ScriptedVnapi, request_file: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    vnapi.service.submit_answer = valuation_pb2.SubmitResponse(
        request_id="req-1", status=valuation_pb2.REQUEST_STATUS_SUCCEEDED, response_xml=RESPONSE_XML)
    assert await vn(vnapi, "submit", str(request_file), "--sync") == cli.EXIT_OK
    assert capsysbinary.readouterr().out == RESPONSE_XML
    assert vnapi.service.calls("Submit")[0].request.sync is True


async def test_submit_sync_failure_prints_the_detail_and_exits_1(
    vnapi: ScriptedVnapi, request_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    vnapi.service.submit_answer = valuation_pb2.SubmitResponse(
        request_id="req-1", status=valuation_pb2.REQUEST_STATUS_FAILED, failure_detail='{"error": "exit 3"}')
    assert await vn(vnapi, "submit", str(request_file), "--sync") == cli.EXIT_REQUEST_FAILED
    captured = capsys.readouterr()
    assert captured.out == ""
    assert_one_line_error(captured.err, "req-1", "exit 3")


async def test_submit_sync_that_outlasts_the_wait_prints_the_id_and_exits_not_ready(
    vnapi: ScriptedVnapi, request_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    vnapi.service.submit_answer = valuation_pb2.SubmitResponse(
        request_id="req-1", status=valuation_pb2.REQUEST_STATUS_STARTED, timed_out=True)
    assert await vn(vnapi, "submit", str(request_file), "--sync") == cli.EXIT_NOT_READY
    assert capsys.readouterr().out == "req-1\n"


async def test_submit_of_a_missing_file_is_an_io_error_on_one_line(
    vnapi: ScriptedVnapi, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await vn(vnapi, "submit", str(tmp_path / "absent.xml")) == cli.EXIT_IO
    assert_one_line_error(capsys.readouterr().err, "absent.xml")
    assert vnapi.service.received == []


async def test_a_header_without_x_prefix_is_a_usage_error(
    vnapi: ScriptedVnapi, request_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await vn(vnapi, "submit", str(request_file), "--header", "Desk=1") == cli.EXIT_USAGE
    assert "X-" in capsys.readouterr().err


async def test_status_prints_json(vnapi: ScriptedVnapi, capsys: pytest.CaptureFixture[str]) -> None:
    vnapi.service.status_answer = valuation_pb2.GetStatusResponse(
        request_id="req-1", status=valuation_pb2.REQUEST_STATUS_STARTED, group_count=2)
    assert await vn(vnapi, "status", "req-1") == cli.EXIT_OK
    body = json.loads(capsys.readouterr().out)
    assert (body["requestId"], body["status"], body["groupCount"], body["startedAt"]) == (
        "req-1", "started", 2, None)


async def test_status_of_an_unknown_id_is_one_line_with_the_reason(
    vnapi: ScriptedVnapi, capsys: pytest.CaptureFixture[str]
) -> None:
    vnapi.service.status_answer = RequestNotFound("no request 'nope'")
    assert await vn(vnapi, "status", "nope") == cli.EXIT_REJECTED
    assert_one_line_error(capsys.readouterr().err, "REQUEST_NOT_FOUND", "no request 'nope'")


async def test_results_are_written_to_stdout_or_a_file(
    vnapi: ScriptedVnapi, tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    vnapi.service.results_answer = valuation_pb2.GetResultsResponse(request_id="req-1", response_xml=RESPONSE_XML)
    assert await vn(vnapi, "results", "req-1") == cli.EXIT_OK
    assert capsysbinary.readouterr().out == RESPONSE_XML
    target = tmp_path / "out.xml"
    assert await vn(vnapi, "results", "req-1", "-o", str(target)) == cli.EXIT_OK
    assert target.read_bytes() == RESPONSE_XML
    assert capsysbinary.readouterr().out == b""


async def test_results_not_ready_and_failed_have_their_own_exit_codes(
    vnapi: ScriptedVnapi, capsys: pytest.CaptureFixture[str]
) -> None:
    vnapi.service.results_answer = ResultNotReady("still running", {"status": "started"})
    assert await vn(vnapi, "results", "req-1") == cli.EXIT_NOT_READY
    assert_one_line_error(capsys.readouterr().err, "RESULT_NOT_READY", "started")
    vnapi.service.results_answer = RequestFailed("request failed", {"detail": '{"error": "bad curve"}'})
    assert await vn(vnapi, "results", "req-1") == cli.EXIT_REQUEST_FAILED
    assert_one_line_error(capsys.readouterr().err, "REQUEST_FAILED", "bad curve")


async def test_watch_prints_one_line_per_event_and_exits_0_on_success(
    vnapi: ScriptedVnapi, capsys: pytest.CaptureFixture[str]
) -> None:
    vnapi.service.watch_events = [event("req-1", "received", 1), event("req-1", "group_started", 2, 0),
                                  event("req-1", "group_completed", 3, 0), event("req-1", "succeeded", 4)]
    assert await vn(vnapi, "watch", "req-1") == cli.EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["2025-06-30T10:00:01.000Z received", "2025-06-30T10:00:02.000Z group_started group=0",
                     "2025-06-30T10:00:03.000Z group_completed group=0", "2025-06-30T10:00:04.000Z succeeded"]


async def test_watch_exits_1_when_the_request_fails(
    vnapi: ScriptedVnapi, capsys: pytest.CaptureFixture[str]
) -> None:
    vnapi.service.watch_events = [event("req-1", "received", 1),
                                  event("req-1", "failed", 2, detail='{"error": "no curve"}')]
    assert await vn(vnapi, "watch", "req-1", "--json") == cli.EXIT_REQUEST_FAILED
    last = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert (last["status"], last["detail"]) == ("failed", {"error": "no curve"})


class _ClosedPipe(io.StringIO):
    """stdout whose reader has gone, as under `vn watch … | head -1`."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


async def test_a_reader_that_leaves_early_ends_the_command_quietly(
    vnapi: ScriptedVnapi, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    vnapi.service.watch_events = [event("req-1", "received", 1), event("req-1", "succeeded", 2)]
    monkeypatch.setattr(sys, "stdout", _ClosedPipe())
    assert await vn(vnapi, "watch", "req-1") == cli.EXIT_OK
    assert capsys.readouterr().err == ""


async def test_watch_that_ends_without_a_terminal_event_is_an_error(
    vnapi: ScriptedVnapi, capsys: pytest.CaptureFixture[str]
) -> None:
    vnapi.service.watch_events = [event("req-1", "received", 1)]
    assert await vn(vnapi, "watch", "req-1") == cli.EXIT_UNAVAILABLE
    assert_one_line_error(capsys.readouterr().err, "ended")


async def test_an_unreachable_vnapi_is_one_line_and_its_own_exit_code(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = await asyncio.to_thread(cli.main, ["status", "r", "--address", f"127.0.0.1:{free_port()}",
                                              "--timeout", "2"])
    assert code == cli.EXIT_UNAVAILABLE
    assert_one_line_error(capsys.readouterr().err, "UNAVAILABLE")


async def test_the_address_comes_from_vnapi_address_when_not_given(
    vnapi: ScriptedVnapi, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VNAPI_ADDRESS", vnapi.address)
    vnapi.service.status_answer = valuation_pb2.GetStatusResponse(request_id="env")
    assert await asyncio.to_thread(cli.main, ["status", "env"]) == cli.EXIT_OK
    assert json.loads(capsys.readouterr().out)["requestId"] == "env"


def test_a_bad_vnapi_address_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VNAPI_ADDRESS", "no-port-here")
    assert cli.main(["status", "x"]) == cli.EXIT_CONFIG
    assert_one_line_error(capsys.readouterr().err, "VNAPI_ADDRESS")


def test_hydrate_hands_every_argument_to_the_hydration_preview(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []
    monkeypatch.setattr(preview, "main", lambda argv: seen.append(argv) or 7)
    assert cli.main(["hydrate", "request.xml", "--group", "2", "--help"]) == 7
    assert cli.main(["--address", "h:1", "hydrate", "x.xml"]) == 7
    assert seen == [["request.xml", "--group", "2", "--help"], ["x.xml"]]


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == cli.EXIT_USAGE
    assert "usage" in capsys.readouterr().err


async def test_watch_with_progress_prints_a_bar_per_group_and_the_outcome(
    vnapi: ScriptedVnapi, capsys: pytest.CaptureFixture[str]
) -> None:
    vnapi.service.watch_events = [event("req-1", "received", 1), event("req-1", "group_started", 2, 0),
                                  event("req-1", "group_completed", 3, 0), event("req-1", "succeeded", 4)]
    vnapi.service.status_answer = valuation_pb2.GetStatusResponse(
        request_id="req-1", current_group=0, group_count=1,
        progress=valuation_pb2.Progress(tasks_expected=4, tasks_completed=4))
    assert await vn(vnapi, "watch", "req-1", "--progress") == cli.EXIT_OK
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["group 0 [" + "#" * 30 + "] 4/4 tasks", "succeeded"]


def test_the_progress_outcome_line_names_a_cancelled_request_as_cancelled() -> None:
    detail = '{"reason": "DEADLINE_EXCEEDED"}'
    assert outcome_line(streams_pb2.LifecycleEvent(status="succeeded")) == "succeeded"
    assert outcome_line(streams_pb2.LifecycleEvent(status="cancelled", detail=detail)).startswith(
        "cancelled: ") and "DEADLINE_EXCEEDED" in outcome_line(streams_pb2.LifecycleEvent(status="cancelled",
                                                                                          detail=detail))
    assert outcome_line(streams_pb2.LifecycleEvent(status="failed", detail=detail)).startswith("failed: ")
