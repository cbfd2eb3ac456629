"""`python -m vnas.poolhost package.module:function`: one process of the VNAS_EXECUTOR_PROCESSES pool.

It imports the function once and serves framed-v1 tasks (vncommon.scripthost) until its stdin ends,
calling it as the in-process executor would: with the task XML, and the TaskContext when it takes a
second argument; an async function is run to completion on a private event loop.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
from collections.abc import Mapping
from typing import Any

from vnas.executors.python import load_function, wants_context
from vnas.task import TaskContext
from vncommon import scripthost
from vncommon.errors import ConfigError

EXIT_CONFIG = 78


def context_from(env: Mapping[str, str]) -> TaskContext:
    """The task's identity, rebuilt from the VN_* fields of its frame."""
    return TaskContext(request_id=env.get("VN_REQUEST_ID", ""), group_index=int(env.get("VN_GROUP_INDEX", "0")),
                       task_id=env.get("VN_TASK_ID", ""), attempt=int(env.get("VN_ATTEMPT", "1")),
                       valuation_name=env.get("VN_VALUATION_NAME", ""), trace_id=env.get("VN_TRACE_ID", ""))


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m vnas.poolhost package.module:function", file=sys.stderr)
        return EXIT_CONFIG
    try:
        function = load_function(argv[0])
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_CONFIG
    takes_ctx = wants_context(function)
    is_async = inspect.iscoroutinefunction(function)

    def handler(task_xml: bytes, env: Mapping[str, str]) -> Any:
        args: tuple[Any, ...] = (task_xml, context_from(env)) if takes_ctx else (task_xml,)
        return asyncio.run(function(*args)) if is_async else function(*args)

    scripthost.serve_framed(handler)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
