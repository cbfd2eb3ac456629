"""The hydration sandbox: real worker processes that give the engine's answers, cost little per job, and are
killed and replaced when a job passes its budget, dies, or is abandoned."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import psutil
import pytest

from bench.requests import chained_request
from tests.conftest import wait_until
from vncommon.errors import HydrationLimit, Unavailable, VnError
from vncommon.xmlsafe import parse_xml
from vnvs.assembly import apply_results, fold_results, folded_response
from vnvs.hydration import HydrationEngine, HydrationSettings, TaskDocument
from vnvs.hydration.sandbox import CpuBudget, HydrationSandbox
from vnvs.hydration.wire import document_limits, serialize_document

pytestmark = pytest.mark.timeout(60)
RUNAWAY = (b"<vnml><project><portfolio>" + b"<i/>" * 3000 + b'</portfolio><group name="g"><valuation name="v">'
           b'<x select="//*[count(//*[count(//*) > 0]) = 1]"/></valuation></group></project></vnml>')
# Variables in the prolog must reach the second group too: the working document travels with them.
TWO_GROUPS = chained_request(2, 10).replace(b"<vnml>", b'<?vnvs $NOTE = "kept" ?><vnml>').replace(
    b"<basePrice>", b"<note>$NOTE</note><basePrice>")


@pytest.fixture
async def sandbox(tmp_path: Path) -> AsyncIterator[HydrationSandbox]:
    box = HydrationSandbox(HydrationSettings(file_roots=(tmp_path,), processes=2, max_seconds=20))
    await box.start()
    yield box
    await box.close()


async def _sandboxed(box: HydrationSandbox, xml: bytes) -> list[list[TaskDocument]]:
    budget = CpuBudget(20)
    root = parse_xml(await box.prepare("r", xml, budget), document_limits(box.settings.max_group_task_bytes))
    groups = []
    for index in range(len(root.findall("project/group"))):
        groups.append(await box.hydrate_group("r", serialize_document(root), index, budget))
        apply_results(root, index, [d.xml for d in groups[-1]])
    return groups


def _in_process(xml: bytes) -> list[list[TaskDocument]]:
    root = parse_xml(xml)
    engine = HydrationEngine(HydrationSettings(), "r")
    engine.prepare(root)
    groups = []
    for index in range(len(root.findall("project/group"))):
        groups.append(engine.hydrate_group(root, index))
        apply_results(root, index, [d.xml for d in groups[-1]])
    return groups


async def test_the_sandbox_gives_exactly_the_tasks_the_engine_gives(sandbox: HydrationSandbox) -> None:
    assert await _sandboxed(sandbox, TWO_GROUPS) == _in_process(TWO_GROUPS)
    assert b"<note>kept</note>" in (await _sandboxed(sandbox, TWO_GROUPS))[1][0].xml


async def test_preparing_with_the_first_group_gives_what_the_two_jobs_give(sandbox: HydrationSandbox) -> None:
    for xml in (TWO_GROUPS, chained_request(1, 3)):
        document, groups, first = await sandbox.prepare_with_first_group("r", xml, CpuBudget(20), True)
        expected_document, expected_groups = await sandbox.prepare_counted("r", xml, CpuBudget(20))
        assert (document, groups) == (expected_document, expected_groups)
        assert first == await sandbox.hydrate_group("r", expected_document, 0, CpuBudget(20))
        assert (await sandbox.prepare_with_first_group("r", xml, CpuBudget(20), False))[2] is None  # not asked


async def test_a_first_group_that_fails_is_returned_as_its_error_and_the_prepare_stands(
        sandbox: HydrationSandbox) -> None:
    broken = TWO_GROUPS.replace(b'<instrument select="."/>', b'<instrument select="./missing"/>')
    document, groups, first = await sandbox.prepare_with_first_group("r", broken, CpuBudget(20), True)
    assert isinstance(first, VnError) and first.metadata["groupIndex"] == "0" and "./missing" in first.message
    assert (document, groups) == await sandbox.prepare_counted("r", broken, CpuBudget(20))
    # A failing whole-document pass still raises: no group was reached.
    with pytest.raises(VnError, match="scheme 'http' is not allowed"):
        await sandbox.prepare_with_first_group(
            "r", TWO_GROUPS.replace(b"<portfolio>", b'<market href="http://example.com/m.xml"/><portfolio>'),
            CpuBudget(20), True)


async def test_a_runaway_first_group_is_stopped_and_returned_as_its_limit(sandbox: HydrationSandbox) -> None:
    before = set(sandbox.pids())
    document, groups, first = await sandbox.prepare_with_first_group("r", RUNAWAY, CpuBudget(1), True)
    assert groups == 1 and b"count(//*" in document
    assert isinstance(first, HydrationLimit) and "1 s of CPU time" in first.message
    await wait_until(lambda: _true(len(sandbox.pids()) == 2 and set(sandbox.pids()) != before), timeout=10)
    assert len(await _sandboxed(sandbox, TWO_GROUPS)) == 2


async def test_the_process_hop_adds_a_few_milliseconds_to_a_two_group_request(sandbox: HydrationSandbox) -> None:
    xml = chained_request(2, 10)
    for _ in range(5):
        await _sandboxed(sandbox, xml)
    inline, hopped = [], []
    for _ in range(30):
        started = time.perf_counter()
        _in_process(xml)
        inline.append(time.perf_counter() - started)
        started = time.perf_counter()
        await _sandboxed(sandbox, xml)
        hopped.append(time.perf_counter() - started)
    added_ms = (sorted(hopped)[15] - sorted(inline)[15]) * 1000
    print(f"measured: 2 groups x 10 tasks, in-process p50 {sorted(inline)[15] * 1000:.1f} ms, "
          f"sandboxed p50 {sorted(hopped)[15] * 1000:.1f} ms (+{added_ms:.1f} ms)")
    assert added_ms < 25, added_ms


async def test_a_job_abandoned_midway_kills_its_worker_and_a_fresh_one_serves_the_next(
        sandbox: HydrationSandbox) -> None:
    before = set(sandbox.pids())
    job = asyncio.create_task(sandbox.hydrate_group("r", RUNAWAY, 0, CpuBudget(20)))
    await wait_until(lambda: _true(bool(sandbox.pids(busy_only=True))), timeout=5)
    [busy] = sandbox.pids(busy_only=True)
    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job
    await _gone(busy)
    assert len(await _sandboxed(sandbox, TWO_GROUPS)) == 2
    assert busy in before and busy not in sandbox.pids()
    await wait_until(lambda: _true(len(sandbox.pids()) == 2), timeout=10)  # the replacement, once started


async def test_a_worker_that_dies_is_reported_and_replaced(sandbox: HydrationSandbox) -> None:
    job = asyncio.create_task(sandbox.hydrate_group("r", RUNAWAY, 0, CpuBudget(20)))
    busy = await _computing(sandbox)
    os.kill(busy, signal.SIGSEGV)
    with pytest.raises(VnError, match=r"hydration process died \(signal SIGSEGV\)"):
        await job
    assert len(await _sandboxed(sandbox, TWO_GROUPS)) == 2


async def test_a_worker_waiting_past_the_wall_clock_backstop_is_stopped(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "market.xml")  # opening it blocks: a fetch that waits and uses no CPU
    box = HydrationSandbox(HydrationSettings(file_roots=(tmp_path,), processes=1, max_seconds=1))
    await box.start()
    try:
        started = time.monotonic()
        with pytest.raises(HydrationLimit, match="wall-clock") as caught:
            await box.prepare("r", b'<vnml><project><market href="market.xml"/></project></vnml>', CpuBudget(1))
        assert caught.value.metadata["limit"] == "HYDRATION_MAX_SECONDS"
        assert time.monotonic() - started < 1 * 3 + 5 + 2
    finally:
        await box.close()


async def test_a_spent_budget_fails_before_any_worker_is_used(sandbox: HydrationSandbox) -> None:
    budget = CpuBudget(5)
    budget.left = 0
    with pytest.raises(HydrationLimit, match="5 s of CPU time"):
        await sandbox.prepare("r", TWO_GROUPS, budget)


async def test_close_stops_busy_and_idle_workers_and_fails_their_jobs_as_unavailable() -> None:
    box = HydrationSandbox(HydrationSettings(processes=2))
    await box.start()
    pids = box.pids()
    running = asyncio.create_task(box.hydrate_group("r", RUNAWAY, 0, CpuBudget(20)))
    await wait_until(lambda: _true(bool(box.pids(busy_only=True))), timeout=5)
    await box.close()
    late = asyncio.create_task(box.prepare("r", TWO_GROUPS, CpuBudget(20)))
    for job in (running, late):
        with pytest.raises(Unavailable, match="stopping"):
            await job
    assert len(pids) == 2
    for pid in pids:
        await _gone(pid)


async def _computing(box: HydrationSandbox) -> int:
    """The pid of the worker once it is deep in its job (it has spent CPU on it)."""
    await wait_until(lambda: _true(bool(box.pids(busy_only=True))), timeout=5)
    [pid] = box.pids(busy_only=True)
    await wait_until(lambda: _true(psutil.Process(pid).cpu_times().user > 0.5), timeout=10)
    return pid


async def _true(value: bool) -> bool:
    return value


async def _gone(pid: int) -> None:
    async def gone() -> bool:
        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    await wait_until(gone, timeout=5)


async def test_folding_and_assembling_in_a_worker_gives_the_bytes_the_service_would_make(
    sandbox: HydrationSandbox,
) -> None:
    """Large documents are folded and assembled in a hydration process: the same bytes as in-process."""
    budget = CpuBudget(20)
    xml = chained_request(3, 40, bytes_per_instrument=8_000)  # above the inline size: the worker path
    limits = document_limits(sandbox.settings.max_group_task_bytes)
    document, groups = await sandbox.prepare_counted("r", xml, budget)
    assert groups == 3
    root = parse_xml(document, limits)
    folds: list[tuple[int, list[bytes]]] = []
    for index in range(groups):
        tasks, document = await sandbox.fold_and_hydrate("r", document, index, budget, folds)
        fold_results(root, folds)
        assert document == serialize_document(root), f"folded document of group {index}"
        assert [t.xml for t in tasks] == [t.xml for t in HydrationEngine(HydrationSettings(), "r").hydrate_group(
            parse_xml(document, limits), index)]
        folds = [(index, [t.xml for t in tasks])]
    response = await sandbox.assemble("r", document, [], folds[0][1], 10**9, budget)
    assert response == folded_response(document, limits, [], "r", folds[0][1], 10**9)
    assert response.startswith(b"<?xml") and response.count(b"<valuation ") == 3 * 40
