"""The Redis side of one run, batched: each step of a request is one or two pipelined round trips.

The ledger is also the run's checkpoint: group hashes, the dispatched attempt of every task and the
stored results are what a resuming instance reads back. vnvs is the only publisher of a request's
events once it runs, so it numbers them itself and publishes them inside the step's pipeline.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis.asyncio as redis

from vncommon import keys, lifecycle
from vncommon.retention import queue_expiry
from vncommon.slotpipe import StepPipeline, guard_passed, step_pipeline
from vncommon.state import (
    GROUP_HASH,
    REQUEST_HASH,
    GroupStatus,
    Priority,
    Status,
    lua_is_terminal,
    parse_priority_or_normal,
    word,
)
from vncommon.streams import text
from vncommon.timeutil import utc_now_iso

# Moves a request to `started` unless it already ended (1 when the run may go on, 0 when it must not: a
# run that took the lease just after another one finished and freed it must not bring the request back),
# keeps the first start time, counts the run, publishes `started` the first time (into the event list,
# and onto the lifecycle stream when that is KEYS[3]: on a cluster, another slot, the caller appends it),
# and answers what the run needs, in one call: {may go on, published `started` now?, runs since the
# last finished group, deadline, priority, events so far}.
# KEYS: state hash, event list[, lifecycle stream]. ARGV: now, the event's JSON, the stream's MAXLEN,
# then the stream entry's field/value pairs (its sequence is added here).
_BEGIN_SCRIPT = f"""
local f = redis.call('HMGET', KEYS[1], '{REQUEST_HASH.status}', '{REQUEST_HASH.started_at}',
  '{REQUEST_HASH.started_published}', '{REQUEST_HASH.deadline_at_ms}', '{REQUEST_HASH.priority}')
local current = f[1]
local starts = redis.call('HINCRBY', KEYS[1], '{REQUEST_HASH.run_starts}', 1)
if {lua_is_terminal("current")} then
  if not f[2] then redis.call('HSET', KEYS[1], '{REQUEST_HASH.started_at}', ARGV[1]) end
  return {{0, 0, starts, f[4], f[5], 0}}
end
local fields = {{'{REQUEST_HASH.status}', '{Status.STARTED}'}}
if not f[2] then
  fields[#fields + 1] = '{REQUEST_HASH.started_at}'
  fields[#fields + 1] = ARGV[1]
end
if f[3] then
  redis.call('HSET', KEYS[1], unpack(fields))
  return {{1, 0, starts, f[4], f[5], redis.call('LLEN', KEYS[2])}}
end
-- The mark goes with its event: a run that dies before this call leaves both to the next.
fields[#fields + 1] = '{REQUEST_HASH.started_published}'
fields[#fields + 1] = '1'
redis.call('HSET', KEYS[1], unpack(fields))
local sequence = redis.call('RPUSH', KEYS[2], ARGV[2])
{lifecycle.lua_announce(3)}
return {{1, 1, starts, f[4], f[5], sequence}}
"""


class RequestEnded(Exception):
    """The request succeeded, failed or was cancelled before this run began: there is nothing to run."""


class RunCancelled(RequestEnded):
    """The request was cancelled (by a caller, or at its deadline) while this run drove it."""


class RunLedger:
    def __init__(self, client: redis.Redis, request_id: str, ttl_seconds: int, stream_shards: int = 1) -> None:
        self._client = client
        self.request_id = request_id
        self._ttl = ttl_seconds
        self._state_key = keys.request_state_key(request_id)
        self._sequence = 0
        self.deadline_at_ms = 0  # epoch ms, read by begin(); 0: none
        self.priority = Priority.NORMAL  # read by begin()
        self.fresh = False  # set by begin(): this run published `started`, so no run got further before
        self._shards = stream_shards

    def pipeline(self, atomic: bool = False, guarded: bool = False) -> StepPipeline:
        """A pipeline for one step; `atomic` wraps it in MULTI/EXEC, so blocked readers (workers waiting
        on the dispatch stream) wake once to a whole batch instead of once per entry. On a cluster the
        MULTI covers the request's own keys only (see `vncommon.slotpipe` for the order and its safety).
        `guarded`: atomic too, and run only while the request has not ended (see `run_guarded`)."""
        if guarded:
            return step_pipeline(self._client, guard=(self._state_key, REQUEST_HASH.status))
        return step_pipeline(self._client, atomic)

    async def run_guarded(self, pipe: StepPipeline) -> None:
        """Run a guarded step; RunCancelled or RequestEnded (nothing written) if the request ended."""
        replies = await pipe.execute()
        if guard_passed(replies):
            return
        if word(replies[0] if replies else "") == Status.CANCELLED:
            raise RunCancelled(f"request {self.request_id} was cancelled")
        raise RequestEnded(f"request {self.request_id} ended while this run drove it")

    def queue_event(self, pipe: StepPipeline, status: str, group_index: int = -1, detail: str = "",
                    unless_ended: bool = True) -> None:
        self._sequence += 1
        event = lifecycle.new_event(self.request_id, status, group_index, detail)
        event.sequence = self._sequence
        if unless_ended:
            lifecycle.queue_publish(pipe, event, self._shards)
        else:
            lifecycle.queue_publish_won(pipe, event, self._shards)

    async def begin(self) -> tuple[bytes | None, int]:
        """Read the request and mark it started; publishes `started` only the first time, in the same
        call. A run that published it is `fresh`: no run before it got further, so it has nothing of
        its groups to read back.

        Returns the request and how many runs started since the last finished group (this one included):
        the count is recorded before any work, so a run that kills its process still counts. Raises
        RequestEnded if the request already succeeded or failed.
        """
        event = lifecycle.new_event(self.request_id, Status.STARTED)
        script_keys = lifecycle.scripted_event_keys(self._client, self.request_id, self._shards)
        pipe = self.pipeline()
        pipe.get(keys.request_xml_key(self.request_id))
        pipe.eval(_BEGIN_SCRIPT, len(script_keys), *script_keys, utc_now_iso(), lifecycle.event_to_json(event),
                  keys.LIFECYCLE_MAXLEN, *lifecycle.entry_pairs(event))
        xml, (started, published, starts, deadline, priority, events) = await pipe.execute()
        if not started:
            raise RequestEnded(f"request {self.request_id} already ended")
        self._sequence = int(events)
        self.deadline_at_ms = int(deadline or 0)
        self.priority = parse_priority_or_normal(priority)
        self.fresh = bool(published)
        if published:
            await lifecycle.announce_scripted(self._client, event, self._sequence, self._shards)
        return (xml if isinstance(xml, bytes) else None), int(starts)

    async def group_progress(self, group_index: int) -> tuple[bool, int, bool]:
        """(completed?, expected task count, `group_started` published?) of a group, as recorded; a
        fresh run knows without reading: nothing is recorded of any group."""
        if self.fresh:
            return False, 0, False
        status, expected, published = await self._client.hmget(
            keys.group_state_key(self.request_id, group_index),
            [GROUP_HASH.status, GROUP_HASH.expected, GROUP_HASH.started_published])
        return word(status) == GroupStatus.COMPLETED, int(expected or 0), published is not None

    async def open_group(self, group_index: int, fresh: bool = False) -> tuple[set[str], dict[str, int]]:
        """Read what is recorded of a group before it runs. Returns (tasks with stored results, dispatched
        attempts). A `fresh` group (`group_started` never published) has dispatched nothing: its checkpoint
        is written in the step that publishes the mark (on a cluster just after it), so there is none to
        read; the guarded step that dispatches it makes it current and checks that the request goes on."""
        if fresh:
            return set(), {}
        pipe = self.pipeline()
        pipe.hgetall(keys.group_tasks_key(self.request_id, group_index))
        pipe.hget(self._state_key, REQUEST_HASH.status)
        attempts, status = await pipe.execute()
        if word(status) == Status.CANCELLED:
            raise RunCancelled(f"request {self.request_id} was cancelled")
        in_flight = {text(task_id): int(attempt) for task_id, attempt in attempts.items()}
        # Results can only exist for tasks that were dispatched: a fresh group skips the lookup.
        done = await self._stored_results(group_index, list(in_flight)) if in_flight else set()
        return done, in_flight

    def queue_group_running(self, pipe: StepPipeline, group_index: int, expected: int, completed: int,
                            first: bool) -> None:
        """The group's state, running, and the request's current group; the first time also
        `group_started`, then (in the same HSET as the state) the mark that it was published."""
        pipe.hset(self._state_key, REQUEST_HASH.current_group, group_index)
        fields: dict[str, str | int] = {GROUP_HASH.expected: expected, GROUP_HASH.completed: completed,
                                        GROUP_HASH.failed: 0, GROUP_HASH.status: GroupStatus.RUNNING}
        if first:
            self.queue_event(pipe, Status.GROUP_STARTED, group_index)
            fields[GROUP_HASH.started_published] = 1
            if group_index == 0:
                # Nothing was dispatched yet, so the request has no updates: create its (empty) updates
                # stream, which workers append to without creating it (vnas.settler) and retention deletes.
                pipe.xadd(keys.updates_stream(self.request_id), {"opened": "1"}, maxlen=0)
        self.queue_group_state(pipe, group_index, fields)

    async def _stored_results(self, group_index: int, task_ids: Sequence[str]) -> set[str]:
        pipe = self.pipeline()
        for task_id in task_ids:
            pipe.exists(keys.task_result_key(self.request_id, group_index, task_id))
        found = await pipe.execute()
        return {task_id for task_id, exists in zip(task_ids, found, strict=True) if exists}

    def queue_group_state(self, pipe: StepPipeline, group_index: int, fields: dict[str, str | int]) -> None:
        """Set fields of the group's hash (named by GROUP_HASH)."""
        mapping: dict[Any, Any] = fields
        pipe.hset(keys.group_state_key(self.request_id, group_index), mapping=mapping)

    def queue_completed(self, pipe: StepPipeline, group_index: int, completed: int) -> None:
        pipe.hincrby(keys.group_state_key(self.request_id, group_index), GROUP_HASH.completed, completed)

    async def results(self, group_index: int, task_ids: Sequence[str]) -> list[bytes | None]:
        if not task_ids:
            return []
        values: list[bytes | None] = await self._client.mget(  # type: ignore[assignment]
            [keys.task_result_key(self.request_id, group_index, task_id) for task_id in task_ids])
        return values

    async def close_group(self, group_index: int, task_count: int) -> None:
        pipe = self.pipeline()
        self.queue_group_state(pipe, group_index, {GROUP_HASH.status: GroupStatus.COMPLETED,
                                                   GROUP_HASH.completed: task_count})
        pipe.hset(self._state_key, REQUEST_HASH.run_starts, 0)  # progress: the runs that led here were not in vain
        self.queue_event(pipe, Status.GROUP_COMPLETED, group_index)
        await pipe.execute()

    async def retire(self) -> None:
        """Start the retention of a request that ended without this run finishing it (it was cancelled, or
        finished elsewhere): the task counts come from what the group hashes recorded."""
        group_count = int(await self._client.hget(self._state_key, REQUEST_HASH.group_count) or 0)
        pipe = self.pipeline()
        for group_index in range(group_count):
            pipe.hget(keys.group_state_key(self.request_id, group_index), GROUP_HASH.expected)
        counts = [int(value or 0) for value in await pipe.execute()] if group_count else []
        pipe = self.pipeline()
        queue_expiry(pipe, self.request_id, counts, self._ttl)
        await pipe.execute()

    async def finish(self, status: str, payload: bytes, detail: str, task_counts: Sequence[int],
                     failed_group: tuple[int, int] | None = None) -> bool:
        """Store the response (or failure), take the terminal state, publish it once, start retention: one
        guarded step, so only the run that takes the terminal state writes any of it (and the group that
        failed, `failed_group` (its index and failed task count), with it). A request that ended otherwise
        meanwhile only gets retention."""
        pipe = self.pipeline(guarded=True)
        if failed_group is not None:
            group_index, failed = failed_group
            self.queue_group_state(pipe, group_index, {GROUP_HASH.status: GroupStatus.FAILED,
                                                       GROUP_HASH.failed: failed})
        key = keys.request_response_key if status == Status.SUCCEEDED else keys.request_failure_key
        pipe.set(key(self.request_id), payload, ex=self._ttl)
        pipe.hset(self._state_key, mapping={REQUEST_HASH.status: status, REQUEST_HASH.completed_at: utc_now_iso()})
        self.queue_event(pipe, status, detail=detail, unless_ended=False)
        queue_expiry(pipe, self.request_id, task_counts, self._ttl)
        if guard_passed(await pipe.execute()):
            return True
        pipe = self.pipeline()
        queue_expiry(pipe, self.request_id, task_counts, self._ttl)
        await pipe.execute()
        return False
