"""Standard output for the command-line tools, which may be read by a pipe that closes early (`| head`)."""

from __future__ import annotations

import contextlib
import io
import os
import sys


def silence() -> None:
    """Send whatever is still written to stdout nowhere, once its reader has gone.

    Python flushes stdout once more at exit; with the pipe closed that flush would print a
    BrokenPipeError of its own, so the descriptor is pointed at the null device instead.
    """
    with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, sys.stdout.fileno())
        finally:
            os.close(devnull)
