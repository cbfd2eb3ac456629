"""The hydration process: reads jobs on stdin, hydrates, answers on stdout, one job at a time.

vnvs starts a few of these (`python -m vnvs.hydration.worker --max-memory-bytes N`) and kills one when a
request passes its budget, so a runaway expression costs a process, never the service's event loop.
The kernel enforces the budgets here: RLIMIT_AS bounds memory (lxml then raises MemoryError, answered as
HYDRATION_LIMIT), and RLIMIT_CPU, set before each job to the CPU seconds the request has left, ends the
process with SIGXCPU even while libxml2 runs an XPath that never returns to Python.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import resource
import sys
import time
from collections.abc import Sequence

from vncommon import vnml
from vncommon.errors import HydrationLimit, VnError
from vncommon.heap import release_large_buffers
from vncommon.xmlsafe import parse_xml
from vnvs.assembly import fold_results, folded_response
from vnvs.hydration.engine import HydrationEngine
from vnvs.hydration.wire import (
    Header,
    document_limits,
    folds_from_wire,
    read_sync,
    serialize_document,
    settings_from_wire,
    write_sync,
)

log = logging.getLogger(__name__)
EXIT_OK = 0
EXIT_RECYCLE = 3  # answered, then left: after a MemoryError (or a large job) the heap is best thrown away
MEMORY_SETTING = "HYDRATION_MAX_MEMORY_BYTES"
# A worker whose peak resident size passed this share of its memory limit exits after answering.
RECYCLE_SHARE = 4


def _limit_cpu(seconds: float | None) -> None:
    """Let the process run `seconds` more of CPU time (None: no limit, while it idles or answers)."""
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = hard
    if seconds is not None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        soft = math.ceil(usage.ru_utime + usage.ru_stime + seconds)
        if hard != resource.RLIM_INFINITY:
            soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def _run(header: Header, blobs: Sequence[bytes]) -> tuple[Header, list[bytes]]:
    settings = settings_from_wire(header["settings"])
    engine = HydrationEngine(settings, str(header["requestId"]))
    limits = document_limits(settings.max_group_task_bytes)
    if header["op"] == "prepare":
        root = parse_xml(blobs[0], what="request")
        engine.prepare(root)
        # Counted by the rule vnapi checked at submit, after hrefs had their say: a request runs whole or
        # fails naming the reason, never as fewer groups than it holds.
        return {"groups": vnml.count_groups(root)}, [serialize_document(root)]
    folds = folds_from_wire(header.get("folds", []), blobs[1:])
    if header["op"] == "group":
        # Earlier results go into the working document first, so this group's expressions see them; the
        # folded document goes back (before this group's own hydration changes the tree) for the next job.
        root = parse_xml(blobs[0], limits, "working document")
        fold_results(root, folds)
        folded = [serialize_document(root)] if folds else []
        documents = engine.hydrate_group(root, int(header["groupIndex"]))
        tasks = [[d.task_id, d.valuation_name, d.group_name] for d in documents]
        return {"tasks": tasks, "folded": bool(folds)}, [*folded, *(d.xml for d in documents)]
    if header["op"] == "assemble":
        last = blobs[1 + sum(len(results) for _, results in folds):]
        max_bytes = header.get("maxBytes")
        return {}, [folded_response(blobs[0], limits, folds, str(header["requestId"]), last, max_bytes)]
    raise ValueError(f"unknown hydration job {header['op']!r}")


def handle(header: Header, blobs: Sequence[bytes], max_memory_bytes: int) -> tuple[Header, list[bytes], bool]:
    """(reply header, reply blobs, whether this process should exit after answering)."""
    _limit_cpu(float(header["cpuSeconds"]))
    started = time.process_time()
    error: VnError | None = None
    out_of_memory = False
    try:
        reply, out = _run(header, blobs)
    except VnError as exc:  # HydrationError, HydrationLimitExceeded, MalformedXml: the request's fault
        error = exc
    except MemoryError:
        out_of_memory = True  # answered below, once the frames holding the big objects are gone
    except RecursionError:
        error = HydrationLimit("hydration nested content too deeply to follow", {"limit": "XML_DEPTH"})
    except Exception as exc:  # a bug or a broken plugin: report it, keep the traceback in the log
        log.exception("hydration job failed")
        error = VnError(f"hydration error: {type(exc).__name__}: {exc}")
    # Reading the next job must not run into what is left of this one's limit.
    _limit_cpu(None)
    if out_of_memory:
        error = HydrationLimit(f"hydration needed more than {max_memory_bytes} bytes of memory ({MEMORY_SETTING})",
                               {"limit": MEMORY_SETTING})
    used = time.process_time() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    leave = out_of_memory or peak > max_memory_bytes // RECYCLE_SHARE
    if error is not None:
        failure = {"reason": error.reason, "code": error.code.name, "message": error.message,
                   "metadata": error.metadata}
        return {"ok": False, "cpuUsed": used, "error": failure, "recycle": leave}, [], leave
    return {"ok": True, "cpuUsed": used, "recycle": leave, **reply}, out, leave


def follow_up(header: Header, reply: Header, out: Sequence[bytes]) -> tuple[Header, list[bytes]] | None:
    """The group-0 job a `prepare` with `firstGroup` asks for, once it went well: the same job vnvs would
    send next (the prepared document, parsed again), answered as a reply of its own, so that a failure
    there is group 0's and the CPU budget is what the prepare left. The prepare's reply says whether
    one follows (`followUp`); none does once the budget is spent (vnvs then fails group 0 on it)."""
    if header["op"] != "prepare" or not header.get("firstGroup") or not reply["ok"]:
        return None
    cpu_left = float(header["cpuSeconds"]) - float(reply["cpuUsed"])
    if cpu_left <= 0:
        return None
    return ({"op": "group", "requestId": header["requestId"], "groupIndex": 0, "folds": [],
             "cpuSeconds": cpu_left, "settings": header["settings"]}, [out[0]])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vnvs-hydration-worker")
    parser.add_argument("--max-memory-bytes", type=int, required=True)
    args = parser.parse_args(argv)
    release_large_buffers()
    resource.setrlimit(resource.RLIMIT_AS, (args.max_memory_bytes, resource.getrlimit(resource.RLIMIT_AS)[1]))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # SIGXCPU would otherwise dump a core per kill
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # stray prints (a plugin's) go to stderr, never into the reply stream
    jobs = sys.stdin.buffer
    write_sync(replies, {"ready": True})  # imports done: vnvs hands out this worker only now
    while True:
        job = read_sync(jobs)
        if job is None:
            return EXIT_OK  # vnvs closed our stdin, or died
        while job is not None:
            header, blobs = job
            reply, out, leave = handle(header, blobs, args.max_memory_bytes)
            del job, blobs  # a follow-up must not keep this part's input alive
            follow = None if leave else follow_up(header, reply, out)
            write_sync(replies, {**reply, "followUp": True} if follow else reply, out)
            if leave:
                return EXIT_RECYCLE
            job = follow


if __name__ == "__main__":
    sys.exit(main())
