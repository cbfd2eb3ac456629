"""A valuation script in one function: `main(handler)` runs it one-shot (SPEC section 9) or persistent.

    from vncommon import scripthost

    def value(task_xml: bytes, env: Mapping[str, str]) -> bytes | str | float:
        ...

    if __name__ == "__main__":
        scripthost.main(value)

Started by a worker in `VNAS_SCRIPT_MODE=oneshot` (or by hand), `main` reads the task XML from the path
in argv[1] (or stdin), calls the handler once with the environment, prints what it returned and exits 0;
a raised exception is printed to stderr and exits 1. Started with VN_SCRIPT_PROTOCOL=framed-v1 (what
the worker sets in persistent mode), it serves framed tasks on stdin until stdin ends (docs/executors.md).

Either way only the helper writes to the real stdout: as the handler is about to run, the result (or
frame) channel moves to a private duplicate of fd 1 and fd 1 is pointed at stderr (in framed mode fd 0 at
/dev/null as well), so a C library that prints with printf, or Python code that prints, cannot corrupt
the result. Such output lands in the worker's stderr tail instead. Output written while the script's
modules are imported, before `main` runs, still goes to stdout: keep imports quiet.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from typing import Any, BinaryIO

from vncommon import taskframes
from vncommon.pricerresult import BadReturn, as_result_bytes

Handler = Callable[[bytes, Mapping[str, str]], Any]
EXIT_FAILED = 1
TRACEBACK_TAIL_CHARS = 2048


def main(handler: Handler) -> None:
    """Run `handler` under whichever contract the environment asks for; does not return."""
    if os.environ.get(taskframes.PROTOCOL_ENV) == taskframes.PROTOCOL:
        serve_framed(handler)
        raise SystemExit(0)
    raise SystemExit(run_once(handler, sys.argv[1:]))


def run_once(handler: Handler, args: list[str]) -> int:
    """The one-shot contract: the task from argv[1] or stdin, the result on stdout, exit 0 or 1."""
    path = args[0] if args and args[0] != "-" else None
    if path is None:
        task_xml = sys.stdin.buffer.read()
    else:
        with open(path, "rb") as handle:
            task_xml = handle.read()
    result_out = private_stdout()
    try:
        result = as_result_bytes(handler(task_xml, os.environ))
    except BadReturn as exc:
        print(f"the handler {exc}", file=sys.stderr)
        return EXIT_FAILED
    except Exception:
        traceback.print_exc()
        return EXIT_FAILED
    finally:
        sys.stdout.flush()
    result_out.write(result)
    return 0


def private_stdout() -> BinaryIO:
    """The real stdout on a private fd; fd 1 (and with it sys.stdout and C's stdout) goes to stderr."""
    sys.stdout.flush()
    channel = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    return channel


def protect_channels() -> tuple[BinaryIO, BinaryIO]:
    """The frame channels on private fds; fd 1 then goes to stderr and fd 0 reads /dev/null."""
    frames_in = os.fdopen(os.dup(0), "rb", buffering=0)
    frames_out = private_stdout()
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    return frames_in, frames_out


def serve_framed(handler: Handler) -> None:
    """Serve one task at a time until the worker closes the channel."""
    frames_in, frames_out = protect_channels()
    frames_out.write(taskframes.hello_frame(os.getpid()))
    while True:
        frame = taskframes.read_frame(frames_in)
        if frame is None:
            return
        if frame.kind != taskframes.TASK:
            raise taskframes.FrameError(f"expected a {taskframes.TASK!r} frame, got {frame.kind!r}")
        frames_out.write(_answer(handler, frame))


def _answer(handler: Handler, frame: taskframes.Frame) -> bytes:
    fields = frame.header.get("env", {})
    # The task's identity in the environment as well, as one-shot scripts see it.
    for name in taskframes.TASK_ENV_FIELDS:
        if name in fields:
            os.environ[name] = str(fields[name])
        else:
            os.environ.pop(name, None)
    started = time.process_time()
    try:
        result = as_result_bytes(handler(frame.body, os.environ))
    except BadReturn as exc:
        return taskframes.error_frame(str(exc))
    except Exception as exc:
        trace = traceback.format_exc()
        sys.stderr.write(trace)
        sys.stderr.flush()
        return taskframes.error_frame(f"{type(exc).__name__}: {exc}", type(exc).__name__,
                                      trace[-TRACEBACK_TAIL_CHARS:])
    finally:
        sys.stdout.flush()  # what the handler printed goes to stderr now, not with the next task
    return taskframes.result_frame(result, (time.process_time() - started) * 1000)
