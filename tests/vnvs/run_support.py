"""What the in-process orchestrator tests share: a three-group request and its pricer, settings, storing a
request as vnapi does, reading its events back, and making a run die at a chosen step."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import redis.asyncio as redis
from lxml import etree

from tests.conftest import RedisServer
from tests.vnvs.fake_worker import TaskFailed, valuation
from vn.v1 import streams_pb2
from vncommon import keys, lifecycle
from vncommon.atomicbatch import GUARD_PASSED
from vncommon.config import CommonSettings
from vncommon.streams import from_fields, text
from vncommon.xmlsafe import parse_xml
from vnvs.hydration import HydrationSettings
from vnvs.hydration.sandbox import HydrationSandbox
from vnvs.ledger import RunLedger
from vnvs.sequencer import RequestRun
from vnvs.settings import VnvsSettings

TRACE_ID = "0" * 32

# price: one task per instrument; risk: one per price result (reads its amount); total: one task that
# reads both risk results. So each group can only be right if it saw the results of the one before.
BOOK = """<?xml version="1.0" encoding="UTF-8"?>
<vnml>
  <project name="book">
    <portfolio>
      <instrument name="A"><notional>100</notional></instrument>
      <instrument name="B"><notional>250</notional></instrument>
    </portfolio>
    <group name="price">
      <valuation name="pv" use="vn:link(/vnml/project/portfolio, instrument)">
        <instrument select="."/>
        <amount/>
      </valuation>
    </group>
    <group name="risk">
      <valuation name="delta" use="vn:link(/vnml/project/group[1], valuation)">
        <instrument select="./instrument"/>
        <base select="%(risk_base)s"/>
        <amount/>
      </valuation>
    </group>
    <group name="total">
      <valuation name="sum">
        <first select="/vnml/project/group[2]/valuation[1]/amount/text()"/>
        <second select="/vnml/project/group[2]/valuation[2]/amount/text()"/>
        <amount/>
      </valuation>
    </group>
  </project>
</vnml>
"""
TASKS = {0: ["1", "2"], 1: ["1", "2"], 2: ["1"]}
ONCE_EACH = {(group, task): 1 for group, ids in TASKS.items() for task in ids}  # executions, none repeated
ALL_TASKS = sum(len(ids) for ids in TASKS.values())
# (group, task) -> amount the pricer below computes: price = 2 x notional, risk = price + 1, total = sum.
AMOUNTS = {(0, "1"): 200, (0, "2"): 500, (1, "1"): 201, (1, "2"): 501, (2, "1"): 702}


def book(risk_base: str = "./amount/text()") -> bytes:
    return (BOOK % {"risk_base": risk_base}).encode()


def price_book(dispatch: streams_pb2.TaskDispatch, document: etree._Element) -> None:
    """The pricer for BOOK."""
    found = valuation(document)

    def number(path: str) -> int:
        value = found.findtext(path)
        if not value:
            raise TaskFailed(f"{path} is empty in task {dispatch.task_id} of group {dispatch.group_index}")
        return int(value)

    if dispatch.group_index == 0:
        amount = 2 * number("instrument/notional")
    elif dispatch.group_index == 1:
        amount = number("base") + 1
    else:
        amount = number("first") + number("second")
    target = found.find("amount")
    assert target is not None
    target.text = str(amount)


def failing(pricer: Callable[..., None], should_fail: Callable[[streams_pb2.TaskDispatch], bool]
            ) -> Callable[..., None]:
    """`pricer`, except that attempts for which `should_fail` holds fail with a message naming the attempt."""

    def price(dispatch: streams_pb2.TaskDispatch, document: etree._Element) -> None:
        if should_fail(dispatch):
            raise TaskFailed(f"pricer exploded on attempt {dispatch.attempt}")
        pricer(dispatch, document)

    return price


def make_settings(server: RedisServer, **overrides: Any) -> VnvsSettings:
    """Fast retries and short blocks, so nothing in a test waits on a timer for long."""
    common = CommonSettings(redis_url=server.url, default_block_ms=500, request_ttl_seconds=3600,
                            max_task_retries=overrides.pop("max_task_retries", 3))
    values: dict[str, Any] = {"instance_id": "vnvs-a", "lease_ms": 300, "task_wait_timeout_ms": 20_000,
                              "retry_base_ms": 5, "retry_cap_ms": 20, **overrides}
    return VnvsSettings(common=common, **values)


async def store_request(client: redis.Redis, xml: bytes) -> str:
    """What vnapi leaves for vnvs: the document, a `received` state and its `received` event."""
    request_id = uuid.uuid4().hex
    await client.set(keys.request_xml_key(request_id), xml)
    await client.hset(keys.request_state_key(request_id), mapping={"status": "received", "traceId": TRACE_ID})
    await lifecycle.publish(client, lifecycle.new_event(request_id, "received"))
    return request_id


_SANDBOX: list[HydrationSandbox] = []


async def shared_sandbox() -> HydrationSandbox:
    """One real hydration sandbox (two worker processes) for every in-process run, started on first use;
    `close_shared_sandbox` (a session fixture in conftest) stops it."""
    if not _SANDBOX:
        sandbox = HydrationSandbox(HydrationSettings(processes=2))
        await sandbox.start()
        _SANDBOX.append(sandbox)
    return _SANDBOX[0]


async def close_shared_sandbox() -> None:
    while _SANDBOX:
        await _SANDBOX.pop().close()


async def new_run(client: redis.Redis, settings: VnvsSettings, request_id: str) -> RequestRun:
    return RequestRun(client, settings, await shared_sandbox(), request_id, TRACE_ID)


async def run(client: redis.Redis, settings: VnvsSettings, request_id: str) -> None:
    """One orchestrator run of the request, to its end (or to a simulated crash)."""
    await asyncio.wait_for((await new_run(client, settings, request_id)).run(), 20)


async def events(client: redis.Redis, request_id: str) -> list[tuple[str, int]]:
    """(status, group index) of the request's recorded events, in order."""
    raw = await client.lrange(keys.request_events_key(request_id), 0, -1)
    return [(data["status"], data["groupIndex"]) for data in map(json.loads, raw)]


async def published(client: redis.Redis, request_id: str) -> list[streams_pb2.LifecycleEvent]:
    """The request's events as announced on the lifecycle stream."""
    entries: Any = await client.xrange(keys.LIFECYCLE_STREAM)
    found = [from_fields(streams_pb2.LifecycleEvent, fields) for _, fields in entries]
    return [event for event in found if event.request_id == request_id]


async def status(client: redis.Redis, request_id: str) -> str:
    value = await client.hget(keys.request_state_key(request_id), "status")
    return "" if value is None else text(value)


async def failure(client: redis.Redis, request_id: str) -> dict[str, Any]:
    raw = await client.get(keys.request_failure_key(request_id))
    assert raw is not None, "no failure detail stored"
    detail: dict[str, Any] = json.loads(raw)
    return detail


def success_events() -> list[tuple[str, int]]:
    """Every event of a BOOK request that succeeded, once each, in order."""
    groups = [(kind, index) for index in TASKS for kind in ("group_started", "group_completed")]
    return [("received", -1), ("started", -1), *groups, ("succeeded", -1)]


async def assert_succeeded_once(client: redis.Redis, request_id: str) -> bytes:
    """The request succeeded, every event was published exactly once and in order; returns the response."""
    # Helpers are not assertion-rewritten by pytest: each assert says what it found.
    found = await status(client, request_id)
    assert found == "succeeded", f"status {found!r}"
    recorded = await events(client, request_id)
    assert recorded == success_events(), f"recorded events {recorded}"
    announced = [(event.status, event.group_index, event.sequence) for event in await published(client, request_id)]
    expected = [(kind, group, n) for n, (kind, group) in enumerate(success_events(), 1)]
    assert announced == expected, f"announced events {announced}"
    response: Any = await client.get(keys.request_response_key(request_id))
    assert response is not None, "no response stored"
    return bytes(response)


def amounts(response: bytes) -> dict[tuple[int, str], int]:
    """(group, position) -> amount of every valuation in a response."""
    root = parse_xml(response, what="response")
    found = {}
    for group_index, group in enumerate(root.findall("project/group")):
        for position, item in enumerate(group.findall("valuation"), 1):
            found[(group_index, str(position))] = int(item.findtext("amount") or "0")
    return found


class Crash(BaseException):
    """The orchestrator process dying at a chosen step: no handler in the run catches a BaseException
    that is not a cancellation, so the run writes nothing more, as a killed process would."""


Step = Callable[..., Awaitable[Any]]


def crash_once(monkeypatch: pytest.MonkeyPatch, method: str, when: Callable[..., bool] = lambda *_: True,
               before_dying: Step | None = None) -> None:
    """The first call of RunLedger.<method> for which `when(*args)` holds runs `before_dying` (part of the
    step, if any) and dies; every later call, such as a resumed run's, goes through."""
    original: Step = getattr(RunLedger, method)
    fired = False

    async def step(self: RunLedger, *args: Any, **kwargs: Any) -> Any:
        nonlocal fired
        if not fired and when(*args):
            fired = True
            if before_dying is not None:
                await before_dying(self, *args)
            raise Crash(f"died in RunLedger.{method}{args!r}")
        return await original(self, *args, **kwargs)

    monkeypatch.setattr(RunLedger, method, step)


def record(monkeypatch: pytest.MonkeyPatch, method: str) -> list[tuple[tuple[Any, ...], Any]]:
    """Every call of RunLedger.<method> from now on, as (arguments, what it returned)."""
    original: Step = getattr(RunLedger, method)
    calls: list[tuple[tuple[Any, ...], Any]] = []

    async def step(self: RunLedger, *args: Any, **kwargs: Any) -> Any:
        result = await original(self, *args, **kwargs)
        calls.append((args, result))
        return result

    monkeypatch.setattr(RunLedger, method, step)
    return calls


def crash_before_event(monkeypatch: pytest.MonkeyPatch, status_word: str, group_index: int = -1) -> None:
    """The first run dies just as it is about to publish this event: the step that carries it is never
    written. (`started` is published by the script that begins the run: dying before it is dying before
    RunLedger.begin.)"""
    if (status_word, group_index) == ("started", -1):
        crash_once(monkeypatch, "begin")
        return
    original = lifecycle.queue_publish
    fired = False

    def publish(pipe: Any, event: streams_pb2.LifecycleEvent, shards: int = 1) -> None:
        nonlocal fired
        if not fired and (event.status, event.group_index) == (status_word, group_index):
            fired = True
            raise Crash(f"died before publishing {status_word} of group {group_index}")
        original(pipe, event, shards)

    monkeypatch.setattr(lifecycle, "queue_publish", publish)


def lose_one_cancellation(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The first cancellation that reaches a step of the run is lost and the step returns as if it had
    completed (every reply None), as CPython 3.11's asyncio.wait_for, through which redis-py sends each
    command, can do. Returns a list that gets one entry when that happened."""
    original = RunLedger.pipeline
    lost: list[int] = []

    def pipeline(self: RunLedger, atomic: bool = False, guarded: bool = False) -> Any:
        pipe = original(self, atomic, guarded)
        execute = pipe.execute

        async def execute_losing_a_cancel(raise_on_error: bool = True) -> list[Any]:
            size = len(pipe)
            try:
                return await execute(raise_on_error)
            except asyncio.CancelledError:
                if lost:
                    raise
                lost.append(1)
                return [GUARD_PASSED] if guarded else [None] * size

        pipe.execute = execute_losing_a_cancel  # type: ignore[method-assign]
        return pipe

    monkeypatch.setattr(RunLedger, "pipeline", pipeline)
    return lost


async def opened(calls: list[tuple[tuple[Any, ...], Any]], group_index: int, times: int) -> bool:
    """Whether the recorded RunLedger.open_group calls opened the group `times` times."""
    return [args[0] for args, _ in calls].count(group_index) == times
