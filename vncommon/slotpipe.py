"""One step's writes when a MULTI/EXEC may not span hash slots (REDIS_MODE=cluster).

A step of a request writes the request's own `{id}` keys and appends to shared streams (dispatch,
lifecycle) that live in other slots. On one Redis the whole step is one pipeline, MULTI/EXEC when asked
(unchanged, and no wrapper is made: `step_pipeline` returns redis-py's own pipeline). On a cluster the
step runs in three ordered parts:

1. `own`: the request's keys, run atomically on its slot (one script) when the step is atomic;
2. `shared`: appends to shared streams, a plain pipeline redis-py splits per node;
3. `after`: request keys that record what part 2 did (the dispatched-attempt checkpoint).

Why this order is crash safe: part 1 holds everything a reader of part 2 needs (task documents, group
state), so no entry ever names a missing key. A crash before part 2 leaves no record of dispatch, so a
resuming run sends the tasks (again): nothing is lost. A crash between parts 2 and 3 leaves entries
without their checkpoint, so a resuming run sends them once more: the task may run twice, but results
are stored SET NX (the first wins) and the tracker ignores a second completion, so the request still
ends once with one result. A lifecycle append lost between parts 1 and 2 is in the request's own event
list (part 1), which Watch replays and sync waiters re-check on RESYNC or by state.

A guarded step (`guard=(state key, status field)`) runs only while the request is known and has not ended:
on one Redis it is one script (`vncommon.atomicbatch`) holding every command, shared streams included;
on a cluster the guard goes with part 1, and parts 2 and 3 run only if it passed. Its replies are one:
`GUARD_PASSED`, or the status that refused the step.
"""

from __future__ import annotations

from typing import Any, Union

import redis.asyncio as redis

from vncommon.atomicbatch import GUARD_PASSED, AtomicBatch
from vncommon.rediscluster import spans_slots

Guard = tuple[str, str]  # (a request's state hash, its status field)


class SlotPipeline:
    """The three parts of a step on a cluster; unknown attributes queue on `own` (the request's keys)."""

    def __init__(self, client: redis.Redis, atomic: bool, guard: Guard | None = None) -> None:
        # redis-py's cluster MULTI/EXEC is unusable (see vncommon.atomicbatch): an atomic part is a script.
        self.own: Any = (AtomicBatch(client, guard) if atomic or guard
                         else client.pipeline(transaction=False))
        self.shared: Any = client.pipeline(transaction=False)
        self.after: Any = client.pipeline(transaction=False)
        self._guarded = guard is not None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.own, name)

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        """Run the parts in order; the replies of `own`, then `shared`, then `after` (guarded: the
        guard's reply only, and nothing after a refusal)."""
        replies: list[Any] = []
        for part in (self.own, self.shared, self.after):
            if len(part):
                replies.extend(await part.execute(raise_on_error=raise_on_error))
            if self._guarded and part is self.own and replies != [GUARD_PASSED]:
                return replies
        return replies[:1] if self._guarded else replies


StepPipeline = Union["redis.client.Pipeline", SlotPipeline, AtomicBatch]


def step_pipeline(client: redis.Redis, atomic: bool = False, guard: Guard | None = None) -> StepPipeline:
    """redis-py's pipeline on one Redis (one MULTI/EXEC when atomic), or one script when guarded; a
    SlotPipeline on a cluster."""
    if spans_slots(client):
        return AtomicBatch(client, guard) if guard else client.pipeline(transaction=atomic)
    return SlotPipeline(client, atomic, guard)


def is_script(pipe: Any) -> bool:
    """Whether what is queued on `pipe` runs inside one script, where no EVAL may be queued."""
    return isinstance(pipe, AtomicBatch) or (isinstance(pipe, SlotPipeline) and isinstance(pipe.own, AtomicBatch))


def guard_passed(replies: list[Any]) -> bool:
    """Whether a guarded step ran (its replies are the guard's)."""
    return replies[:1] == [GUARD_PASSED]


def shared_part(pipe: Any) -> Any:
    """Where appends to shared streams go: the pipeline itself on one Redis, its `shared` part on a cluster."""
    return pipe.shared if isinstance(pipe, SlotPipeline) else pipe


def after_part(pipe: Any) -> Any:
    """Where records of the shared appends go: the pipeline itself on one Redis, its `after` part on a cluster."""
    return pipe.after if isinstance(pipe, SlotPipeline) else pipe
