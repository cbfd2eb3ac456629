"""A small worker written for the orchestrator tests: it takes dispatch entries, reads the task XML,
prices it with a function the test gives, and settles exactly as vnas does (SPEC section 9): result with
SET NX, update on the request's updates stream, then XACK.

It counts what it ran, so a test can prove that a resumed request repeats no finished task, and it can
hold chosen tasks (taken from the stream but not yet run) until the test releases them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import redis.asyncio as redis
from lxml import etree
from redis.exceptions import ResponseError

from vn.v1 import streams_pb2
from vncommon import keys
from vncommon.streams import from_fields, to_fields
from vncommon.xmlsafe import parse_xml, serialize

# What vnas writes into TaskUpdate.status.
COMPLETED = "completed"
FAILED = "failed"

TaskKey = tuple[int, str]  # (group index, task id)
AttemptKey = tuple[int, str, int]  # (group index, task id, attempt)
Pricer = Callable[[streams_pb2.TaskDispatch, etree._Element], None]
"""Fills in the valuation of a parsed task document in place, or raises TaskFailed."""


class TaskFailed(Exception):
    """The pricer's way to fail an attempt; the message becomes the update's error."""


def valuation(document: etree._Element) -> etree._Element:
    """The one valuation of a task document."""
    found = document.find("project/group/valuation")
    assert found is not None, "task document without project/group/valuation"
    return found


class FakeWorker:
    def __init__(self, client: redis.Redis, price: Pricer, result_ttl_s: int = 3600) -> None:
        self._client = client
        self._price = price
        self._ttl = result_ttl_s
        self.executions: Counter[TaskKey] = Counter()
        self.runs: list[tuple[int, str, int]] = []  # (group index, task id, attempt) in the order run
        self.holding: set[AttemptKey] = set()  # held attempts already taken from the stream
        self._gates: dict[AttemptKey, asyncio.Event] = {}
        self._handlers: set[asyncio.Task[None]] = set()
        self._errors: list[BaseException] = []

    def hold(self, group_index: int, task_id: str, attempt: int = 1) -> None:
        """Take this attempt from the stream but do not run it until `release`."""
        self._gates[(group_index, task_id, attempt)] = asyncio.Event()

    def release(self, group_index: int, task_id: str, attempt: int = 1) -> None:
        self._gates[(group_index, task_id, attempt)].set()

    @contextlib.asynccontextmanager
    async def running(self, consumer: str = "fake-worker") -> AsyncIterator[FakeWorker]:
        """Consume while the block runs; on exit stop, and fail the test if a handler broke."""
        with contextlib.suppress(ResponseError):  # BUSYGROUP: another worker of this test made it
            await self._client.xgroup_create(keys.DISPATCH_STREAM, keys.DISPATCH_GROUP, id="0", mkstream=True)
        loop = asyncio.create_task(self._consume(consumer), name=f"fake-worker-{consumer}")
        try:
            yield self
        finally:
            loop.cancel()
            for gate in self._gates.values():
                gate.set()
            await asyncio.gather(loop, *self._handlers, return_exceptions=True)
        if self._errors:
            raise AssertionError(f"the fake worker broke: {self._errors[0]!r}") from self._errors[0]

    async def _consume(self, consumer: str) -> None:
        while True:
            reply: Any = await self._client.xreadgroup(keys.DISPATCH_GROUP, consumer, {keys.DISPATCH_STREAM: ">"},
                                                       count=100, block=1000)
            for _stream, entries in reply or []:
                for entry_id, fields in entries:
                    handler = asyncio.create_task(self._handle(entry_id, fields))
                    self._handlers.add(handler)
                    handler.add_done_callback(self._handlers.discard)

    async def _handle(self, entry_id: bytes, fields: dict[bytes | str, bytes | str]) -> None:
        try:
            dispatch = from_fields(streams_pb2.TaskDispatch, fields)
            attempt: AttemptKey = (dispatch.group_index, dispatch.task_id, dispatch.attempt)
            gate = self._gates.get(attempt)
            if gate is not None:
                self.holding.add(attempt)
                await gate.wait()
            update, result = await self._execute(dispatch)
            await self._settle(entry_id, dispatch, update, result)
        except Exception as exc:  # reported when the worker stops
            self._errors.append(exc)

    async def _execute(self, dispatch: streams_pb2.TaskDispatch) -> tuple[streams_pb2.TaskUpdate, bytes | None]:
        self.executions[(dispatch.group_index, dispatch.task_id)] += 1
        self.runs.append((dispatch.group_index, dispatch.task_id, dispatch.attempt))
        update = streams_pb2.TaskUpdate(request_id=dispatch.request_id, group_index=dispatch.group_index,
                                        task_id=dispatch.task_id, attempt=dispatch.attempt, deliveries=1,
                                        duration_ms=1)
        # A small document travels in the entry (payload), a larger one in the key it names.
        xml: Any = dispatch.payload.encode() if dispatch.payload else await self._client.get(dispatch.payload_key)
        if xml is None:
            update.status, update.error = FAILED, f"task XML {dispatch.payload_key} is missing"
            return update, None
        document = parse_xml(bytes(xml), what="task XML")
        try:
            self._price(dispatch, document)
        except TaskFailed as exc:
            update.status, update.error = FAILED, str(exc)
            return update, None
        update.status, update.result_key = COMPLETED, dispatch.result_key
        return update, serialize(document)

    async def _settle(self, entry_id: bytes, dispatch: streams_pb2.TaskDispatch, update: streams_pb2.TaskUpdate,
                      result: bytes | None) -> None:
        """As vnas's settler: result (never over an earlier one) and update in one MULTI, then the ack."""
        fields: dict[Any, Any] = to_fields(update)
        async with self._client.pipeline(transaction=True) as pipe:
            if result is not None:
                pipe.set(dispatch.result_key, result, nx=True, ex=self._ttl)
            pipe.xadd(dispatch.updates_stream, fields)
            pipe.expire(dispatch.updates_stream, self._ttl)
            await pipe.execute()
        await self._client.xack(keys.DISPATCH_STREAM, keys.DISPATCH_GROUP, entry_id)
