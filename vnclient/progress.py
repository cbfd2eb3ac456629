"""`vn watch --progress`: a bar per group with tasks done / expected, then the outcome.

On a terminal the running group's bar is redrawn in place (from GetStatus, polled while it runs);
elsewhere each group's bar is printed once, when the group completes.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import TextIO

from vn.v1 import streams_pb2
from vnclient._client import ValuationClient
from vnclient.convert import parse_detail
from vncommon.state import Status, is_terminal

BAR_WIDTH = 30
POLL_S = 0.5


def bar(group_index: int, done: int, expected: int) -> str:
    filled = BAR_WIDTH if expected and done >= expected else (BAR_WIDTH * done // expected if expected else 0)
    return f"group {group_index} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done}/{expected} tasks"


def outcome_line(event: streams_pb2.LifecycleEvent) -> str:
    if event.status == Status.SUCCEEDED:
        return Status.SUCCEEDED
    detail = parse_detail(event.detail)  # failed or cancelled: say which, and why
    return f"{event.status}: {json.dumps(detail) if not isinstance(detail, str) else detail}"


class ProgressView:
    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self.live = self.out.isatty()
        self._drawn = False

    def _write(self, text: str, final: bool) -> None:
        if self.live:
            self.out.write("\r\x1b[2K" + text + ("\n" if final else ""))
        elif final:
            self.out.write(text + "\n")
        self.out.flush()
        self._drawn = not final

    async def follow(self, client: ValuationClient, request_id: str, timeout_s: float | None) -> str:
        """Draw until the terminal event; returns its status."""
        events: asyncio.Queue[streams_pb2.LifecycleEvent | None] = asyncio.Queue()

        async def pump() -> None:
            async for event in client.watch(request_id, timeout=timeout_s):
                await events.put(event)
            await events.put(None)

        reader = asyncio.create_task(pump())
        group = -1
        try:
            while True:
                try:
                    event = await asyncio.wait_for(events.get(), POLL_S if group >= 0 and self.live else None)
                except TimeoutError:
                    status = await client.status(request_id)
                    self._write(bar(group, status.progress.tasks_completed, status.progress.tasks_expected), False)
                    continue
                if event is None:
                    await reader
                    return ""
                if event.status == Status.GROUP_STARTED:
                    group = event.group_index
                elif event.status == Status.GROUP_COMPLETED:
                    status = await client.status(request_id)
                    expected = status.progress.tasks_expected if status.current_group == event.group_index else 0
                    self._write(bar(event.group_index, expected, expected) if expected
                                else f"group {event.group_index} completed", True)
                    group = -1
                elif is_terminal(event.status):
                    if self._drawn:
                        self._write("", True)
                    self._write(outcome_line(event), True)
                    return event.status
        finally:
            reader.cancel()
