"""The script host of the pricers' entry points.

One-shot (SPEC section 9): argv [script, task-xml-path], the task XML also on stdin, result XML on stdout
and exit 0; on failure one line on stderr and exit 1. Started by a worker in persistent mode
(VNAS_SCRIPT_MODE=persistent, docs/executors.md), the same entry point serves framed tasks one at a
time through `vncommon.scripthost`, with QuantLib loaded once; a PricingError's one line is the error.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping

from pricers.errors import PricingError
from vncommon import scripthost, taskframes

Handler = Callable[[bytes], bytes]
EXIT_FAILED = 1
EXIT_USAGE = 2


def main(handler: Handler, argv: list[str] | None = None) -> int:
    if os.environ.get(taskframes.PROTOCOL_ENV) == taskframes.PROTOCOL:
        def framed(task_xml: bytes, env: Mapping[str, str]) -> bytes:
            return handler(task_xml)

        scripthost.serve_framed(framed)
        return 0
    args = sys.argv if argv is None else argv
    prog = args[0].rsplit("/", 1)[-1] if args else "pricer"
    try:
        if len(args) > 1 and args[1] != "-":
            with open(args[1], "rb") as handle:
                task_xml = handle.read()
        else:
            task_xml = sys.stdin.buffer.read()
    except OSError as exc:
        print(f"{prog}: cannot read the task XML: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        result = handler(task_xml)
    except PricingError as exc:
        print(f"{prog}: {' '.join(str(exc).split())}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as exc:  # a defect, not bad input: still one line, still a failed task
        print(f"{prog}: internal error {type(exc).__name__}: {' '.join(str(exc).split())}", file=sys.stderr)
        return EXIT_FAILED
    sys.stdout.buffer.write(result)
    sys.stdout.buffer.flush()
    return 0
