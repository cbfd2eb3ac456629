"""The in-process executor's process pool (VNAS_EXECUTOR_PROCESSES) with real processes: the same
results and errors as the thread path, and a pool that survives timeouts and crashes."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from tests.conftest import wait_until
from tests.vnas.conftest import CTX, TASK_XML, price_of, process_alive
from tests.vnas.warmtasks import POOL_TARGET, ctx, identity, pid_of, pool, python_script, task
from vnas.executors import PythonExecutor, WarmExecutor, build_executor
from vnas.settings import VnasSettings
from vncommon import errortext
from vncommon.errors import ConfigError

Make = Callable[..., WarmExecutor]


@pytest.fixture
async def make() -> AsyncIterator[Make]:
    made: list[WarmExecutor] = []

    def factory(**settings: object) -> WarmExecutor:
        made.append(pool(**settings))
        return made[-1]

    yield factory
    for executor in made:
        await executor.aclose()


async def gone(*pids: int) -> bool:
    return not any(process_alive(pid) for pid in pids)


async def test_the_pool_runs_the_function_in_other_processes_and_reuses_them(make: Make) -> None:
    executor = make(executor_processes=1)
    pids = {pid_of(await executor.run(ctx(str(n)), task("whoami"))) for n in range(3)}
    assert len(pids) == 1 and os.getpid() not in pids
    assert price_of((await executor.run(ctx(), task("price"))).result_xml) == "101.25"


async def test_a_function_taking_the_context_gets_the_tasks_identity(make: Make) -> None:
    executor = make(executor="tests.vnas.pricers:bare_valuation")  # async, with ctx
    outcome = await executor.run(CTX, TASK_XML)
    assert identity(outcome) == {"name": "bond", "task": "1"}


@pytest.mark.parametrize("behaviour", ["raise", "nan", "inf", "dict"])
async def test_errors_are_word_for_word_those_of_the_thread_path(make: Make, behaviour: str) -> None:
    pooled = await make().run(ctx(), task(behaviour))
    threaded = await PythonExecutor(POOL_TARGET, 10).run(ctx(), task(behaviour))
    assert not pooled.completed and not threaded.completed
    assert pooled.error == threaded.error
    if behaviour == "raise":
        assert errortext.summary(pooled.error) == f"{POOL_TARGET} raised ValueError"
        assert "ValueError: no curve for EOD" in pooled.error


async def test_tasks_run_side_by_side_in_separate_processes(make: Make) -> None:
    executor = make(executor_processes=2)
    first, second = await asyncio.gather(*(executor.run(ctx(str(n)), task("hold")) for n in range(2)))
    a, b = identity(first), identity(second)
    assert a["pid"] != b["pid"]
    assert float(a["start"]) < float(b["end"]) and float(b["start"]) < float(a["end"])  # they overlapped


async def test_a_timeout_kills_the_pool_process_and_frees_its_slot(make: Make) -> None:
    executor = make(executor_processes=1, task_timeout_ms=1500)
    before = pid_of(await executor.run(ctx(), task("whoami")))
    outcome = await executor.run(ctx(), task("sleep"))
    assert errortext.summary(outcome.error).startswith(f"{POOL_TARGET} ran past VNAS_TASK_TIMEOUT_MS (1500 ms)")
    await wait_until(lambda: gone(before), timeout=5)
    assert pid_of(await executor.run(ctx(), task("whoami"))) != before  # the only slot serves again


async def test_a_crashed_pool_process_fails_its_attempt_and_the_pool_recovers(make: Make) -> None:
    executor = make(executor_processes=2)
    outcomes = await asyncio.gather(executor.run(ctx("1"), task("sigkill")), executor.run(ctx("2"), task("hold")))
    crashed, beside = outcomes
    assert errortext.summary(crashed.error).startswith(
        f"{POOL_TARGET}: process exited during the task with exit code -9 (killed by SIGKILL)")
    assert beside.completed, beside.error  # the other slot ran on
    assert (await executor.run(ctx("3"), task("price"))).completed


async def test_stdout_from_c_does_not_corrupt_the_pool_channel(make: Make) -> None:
    outcome = await make().run(ctx(), task("stdout"))
    assert outcome.completed, outcome.error
    assert price_of(outcome.result_xml) == "99.50"


async def test_a_leaking_pool_process_is_recycled(make: Make) -> None:
    executor = make(executor_processes=1, warm_max_rss_mb=90)
    first = pid_of(await executor.run(ctx(), task("whoami")))
    assert all([(await executor.run(ctx(), task("leak"))).completed for _ in range(3)])
    assert pid_of(await executor.run(ctx(), task("whoami"))) != first


# Built executors adopt orphans as the worker does: their sweeps would kill this test runner's own
# children (its redis-server), so they are only built here, never run.
async def test_build_executor_makes_a_pool_when_processes_are_set() -> None:
    executor = build_executor(VnasSettings(executor=POOL_TARGET, executor_processes=2), {})
    assert isinstance(executor, WarmExecutor) and executor.label == POOL_TARGET
    await executor.aclose()
    with pytest.raises(ConfigError, match=r"VNAS_EXECUTOR: cannot import 'tests\.vnas\.nope'"):
        build_executor(VnasSettings(executor="tests.vnas.nope:price", executor_processes=2), {})


async def test_persistent_mode_is_built_for_a_script(tmp_path: Path) -> None:
    settings = VnasSettings(script=python_script(tmp_path), script_mode="persistent")
    executor = build_executor(settings, {})
    assert isinstance(executor, WarmExecutor) and executor.label == "script"
    await executor.aclose()
