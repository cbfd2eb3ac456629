"""A pricer for the warm executor tests: what it does is named by the task's <behaviour> element.

Run as a script (vncommon.scripthost: one-shot or framed-v1) and, as `pool_value`, in the process pool.
"""

from __future__ import annotations

import ctypes
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping

from lxml import etree

from vncommon import scripthost

LEAK: list[bytes] = []


def behaviour_of(task_xml: bytes) -> str:
    root = etree.fromstring(task_xml)
    return str(root.findtext(".//behaviour") or "price")


def value(task_xml: bytes, env: Mapping[str, str]) -> bytes | str | float | object:
    behaviour = behaviour_of(task_xml)
    if behaviour == "price":
        return 101.25
    if behaviour == "whoami":
        task_env = os.environ.get("VN_TASK_ID", "")
        return (f'<valuation name="{env.get("VN_VALUATION_NAME", "")}" pid="{os.getpid()}" '
                f'task="{env.get("VN_TASK_ID", "")}" attempt="{env.get("VN_ATTEMPT", "")}" '
                f'envTask="{task_env}"><ok/></valuation>')
    if behaviour == "hold":
        started = time.time()
        time.sleep(0.3)
        return f'<valuation pid="{os.getpid()}" start="{started}" end="{time.time()}"><ok/></valuation>'
    if behaviour == "sleep-with-child":
        child = subprocess.Popen(["sleep", "60"])
        sys.stderr.write(f"child={child.pid}\n")
        sys.stderr.flush()
        time.sleep(60)
    if behaviour == "raise":
        raise ValueError("no curve for EOD")
    if behaviour == "nan":
        return math.nan
    if behaviour == "inf":
        return math.inf
    if behaviour == "dict":
        return {"price": 1}
    if behaviour == "stdout":
        # What a C library does: straight to fd 1, past Python's sys.stdout, and through libc's stdio.
        os.write(1, b"noise written to fd 1\n")
        libc = ctypes.CDLL(None)
        libc.puts(b"noise from libc puts")
        libc.fflush(None)
        print("noise from print")
        return 99.5
    if behaviour == "exit":
        sys.stderr.write("giving up on this one\n")
        sys.stderr.flush()
        os._exit(3)
    if behaviour == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    if behaviour == "sleep":
        time.sleep(60)
    if behaviour == "leak":
        LEAK.append(os.urandom(40 * 1024 * 1024))  # touched, so resident
        return 100.0
    if behaviour == "big":
        return b"<valuation>" + b"x" * 4096 + b"</valuation>"
    raise KeyError(f"unknown behaviour {behaviour!r}")


def pool_value(task_xml: bytes) -> bytes | str | float | object:
    """The same, as an in-process pricer (VNAS_EXECUTOR): the task's identity comes from the pool host."""
    return value(task_xml, os.environ)


if __name__ == "__main__":
    scripthost.main(value)
