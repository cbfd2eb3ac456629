"""vnas test helpers: task XML, executable scripts in tmp_path, dispatching entries, worker factories."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as redis

from tests.conftest import RedisServer
from vn.v1 import streams_pb2
from vnas.consumer import TaskConsumer
from vnas.executors import Executor, ScriptExecutor
from vnas.settings import VnasSettings
from vnas.task import TaskContext
from vncommon import keys
from vncommon.config import CommonSettings
from vncommon.redisconn import create_redis
from vncommon.streams import from_fields, to_fields

TASK_XML = b"""<?xml version="1.0" encoding="UTF-8"?>
<vnml><project name="eod"><group name="price"><valuation name="bond">
<instrument name="UST10"><coupon>0.0425</coupon></instrument>
<analytics><evaluation><date>2025-06-30</date></evaluation><price><amount/></price></analytics>
<vndb externalId="1"/></valuation></group></project></vnml>
"""

CTX = TaskContext(request_id="req-1", group_index=0, task_id="1", attempt=1, valuation_name="bond",
                  trace_id="trace-1")


def write_script(directory: Path, body: str, name: str = "script.sh", shebang: str = "#!/bin/sh") -> str:
    """An executable script file holding `body`; returns its path."""
    path = directory / name
    path.write_text(f"{shebang}\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return str(path)


def process_alive(pid: int) -> bool:
    """False once the process is gone or a zombie (containers may not reap orphans at once)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            state = handle.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def price_of(result_xml: bytes) -> str:
    from lxml import etree

    root = etree.fromstring(result_xml)
    return str(root.findtext("project/group/valuation/analytics/price/amount"))


async def dispatch(
    client: redis.Redis, *, request_id: str = "req-1", task_id: str = "1", group_index: int = 0,
    xml: bytes | None = TASK_XML, attempt: int = 1, updates: str | None = None, max_deliveries: int = 0,
    inline: bool = False,
) -> str:
    """Store the task XML (unless xml is None) and add a dispatch entry; returns the entry id. With
    `inline` the XML travels in the entry itself (the `payload` field) and no key is written."""
    payload_key = "" if inline else keys.task_xml_key(request_id, group_index, task_id)
    if xml is not None and not inline:
        await client.set(payload_key, xml)
    entry = streams_pb2.TaskDispatch(
        request_id=request_id, group_index=group_index, group_name="price", task_id=task_id,
        valuation_name="bond", payload_key=payload_key,
        result_key=keys.task_result_key(request_id, group_index, task_id), attempt=attempt,
        updates_stream=updates or keys.updates_stream(request_id), trace_id="trace-1",
        max_deliveries=max_deliveries, payload=(xml or b"").decode() if inline else "",
    )
    fields: dict[Any, Any] = to_fields(entry)
    entry_id = await client.xadd(keys.DISPATCH_STREAM, fields)
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)


async def read_updates(client: redis.Redis, request_id: str = "req-1") -> list[streams_pb2.TaskUpdate]:
    raw = await client.xrange(keys.updates_stream(request_id))
    return [from_fields(streams_pb2.TaskUpdate, fields) for _id, fields in raw]


async def pending_count(client: redis.Redis) -> int:
    summary = await client.xpending(keys.DISPATCH_STREAM, keys.DISPATCH_GROUP)
    return int(summary["pending"])


@dataclass
class Worker:
    """A consumer under test with its own Redis pool; `start()` runs it in the background."""

    consumer: TaskConsumer
    client: redis.Redis
    settings: VnasSettings
    task: asyncio.Task[None] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def start(self, drain: bool = False) -> asyncio.Task[None]:
        self.task = asyncio.create_task(self.consumer.run(drain=drain))
        return self.task

    async def stop(self) -> None:
        self.consumer.stop_fetching()
        if self.task is not None:
            await asyncio.wait_for(self.task, 20)


WorkerFactory = Callable[..., Worker]


@pytest.fixture
async def make_worker(redis_server: RedisServer, tmp_path: Path) -> AsyncIterator[WorkerFactory]:
    """Factory: make_worker(executor=None, script=..., **settings overrides); stops and closes all it made."""
    made: list[Worker] = []
    default_script = write_script(tmp_path, "echo 101.25", name="default-price.sh")

    def factory(executor: Executor | None = None, script: str | None = None, **overrides: Any) -> Worker:
        values: dict[str, Any] = {
            "common": CommonSettings(redis_url=redis_server.url, default_block_ms=100),
            "script": script or default_script,
            "consumer_name": f"worker-{len(made)}",
            "shutdown_grace_ms": 2_000,
        }
        values.update(overrides)
        settings = VnasSettings(**values)
        runner = executor or ScriptExecutor(settings.script or default_script, settings.task_timeout_s,
                                            dict(os.environ))
        client = create_redis(redis_server.url)
        worker = Worker(TaskConsumer(client, settings, runner), client, settings)
        made.append(worker)
        return worker

    yield factory
    for worker in made:
        worker.consumer.stop_fetching()
        if worker.task is not None:
            await asyncio.wait_for(asyncio.gather(worker.task, return_exceptions=True), 20)
        await worker.client.aclose()
