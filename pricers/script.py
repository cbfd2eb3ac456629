"""The one-shot script host (SPEC section 9): argv [script, task-xml-path], the task XML also on stdin,
result XML on stdout and exit 0; on failure one line on stderr and exit 1.

Every entry point is `main(handler)`, so the host can change (a persistent framed loop) without
touching the pricers.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from pricers.errors import PricingError

Handler = Callable[[bytes], bytes]
EXIT_FAILED = 1
EXIT_USAGE = 2


def main(handler: Handler, argv: list[str] | None = None) -> int:
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
