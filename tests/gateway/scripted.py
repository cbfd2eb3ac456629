"""A scripted ValuationService on a real grpc.aio server: each test sets its answers and reads what it got.

Errors are raised as the real VnError classes through `unary_errors`/`stream_errors`, so the rich
status (ErrorInfo with reason and metadata) travels over the wire exactly as vnapi sends it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc

from vn.v1 import streams_pb2, valuation_pb2, valuation_pb2_grpc
from vnclient import VALUATION_SERVICE
from vncommon.errors import VnError
from vncommon.grpcutil import ServiceServer, stream_errors, unary_errors

MAX_MESSAGE_BYTES = 10 * 1024 * 1024 + 1024 * 1024

Answer = Any  # a response message, a VnError to raise, or an async callable taking the request


@dataclass
class Received:
    """One call as the server saw it."""

    method: str
    request: Any
    metadata: dict[str, str]
    deadline_s: float | None


async def _answer(answer: Answer, request: Any) -> Any:
    if isinstance(answer, VnError):
        raise answer
    if callable(answer):
        return await answer(request)
    return answer


class ScriptedValuationService(valuation_pb2_grpc.ValuationServiceServicer):
    """Answers set by the test; every call recorded in `received`."""

    def __init__(self) -> None:
        self.submit_answer: Answer = valuation_pb2.SubmitResponse(
            request_id="req-1", status=valuation_pb2.REQUEST_STATUS_RECEIVED
        )
        self.status_answer: Answer = VnError("no status scripted")
        self.results_answer: Answer = VnError("no results scripted")
        self.watch_events: list[streams_pb2.LifecycleEvent] = []
        self.watch_error: VnError | None = None
        # With watch_hold, Watch stays open after its events until the caller cancels it, and says so.
        self.watch_hold = False
        self.watch_cancelled = asyncio.Event()
        self.received: list[Received] = []

    def _record(self, method: str, request: Any, context: grpc.aio.ServicerContext) -> None:
        metadata = {item.key: item.value for item in context.invocation_metadata() or ()}
        self.received.append(Received(method, request, metadata, context.time_remaining()))

    def calls(self, method: str) -> list[Received]:
        return [call for call in self.received if call.method == method]

    @unary_errors
    async def Submit(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self._record("Submit", request, context)
        return await _answer(self.submit_answer, request)

    @unary_errors
    async def GetStatus(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self._record("GetStatus", request, context)
        return await _answer(self.status_answer, request)

    @unary_errors
    async def GetResults(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self._record("GetResults", request, context)
        return await _answer(self.results_answer, request)

    @stream_errors
    async def Watch(self, request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        self._record("Watch", request, context)
        for event in self.watch_events:
            yield valuation_pb2.WatchResponse(event=event)
        if self.watch_error is not None:
            raise self.watch_error
        if self.watch_hold:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.watch_cancelled.set()
                raise


@dataclass
class ScriptedVnapi:
    """The running server: where it listens and the servicer to script."""

    service: ScriptedValuationService
    server: ServiceServer
    address: str
    stopped: bool = field(default=False)

    async def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            await self.server.stop(0)


async def start_scripted_vnapi() -> ScriptedVnapi:
    service = ScriptedValuationService()
    server = ServiceServer(MAX_MESSAGE_BYTES, [VALUATION_SERVICE])
    valuation_pb2_grpc.add_ValuationServiceServicer_to_server(service, server.server)
    port = server.bind("127.0.0.1:0")
    await server.start()
    return ScriptedVnapi(service, server, f"127.0.0.1:{port}")


def delayed(seconds: float, answer: Answer) -> Callable[[Any], Awaitable[Any]]:
    """An answer that arrives only after `seconds` (for deadline tests)."""

    async def respond(request: Any) -> Any:
        await asyncio.sleep(seconds)
        return await _answer(answer, request)

    return respond


def event(request_id: str, status: str, sequence: int, group_index: int = -1,
          detail: str = "") -> streams_pb2.LifecycleEvent:
    return streams_pb2.LifecycleEvent(request_id=request_id, status=status, group_index=group_index,
                                      timestamp=f"2025-06-30T10:00:0{sequence}.000Z", detail=detail,
                                      sequence=sequence)
