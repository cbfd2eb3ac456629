"""Persistent scripts (VNAS_SCRIPT_MODE=persistent) with real framed-v1 processes: the SPEC section 9
contract over frames, and every way a warm process can go wrong."""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import psutil
import pytest

from tests.conftest import wait_until
from tests.vnas.conftest import price_of, process_alive, write_script
from tests.vnas.warmtasks import SCRIPTS, ctx, identity, persistent, pid_of, python_script, task
from vnas.executors import ScriptExecutor, WarmExecutor, warm
from vncommon import errortext

Make = Callable[..., WarmExecutor]


async def gone(*pids: int) -> bool:
    return not any(process_alive(pid) for pid in pids)


@pytest.fixture
async def make(tmp_path: Path) -> AsyncIterator[Make]:
    """make(**settings): a persistent executor of warm_pricer.py; every one is closed afterwards."""
    made: list[WarmExecutor] = []
    script = python_script(tmp_path)

    def factory(**settings: object) -> WarmExecutor:
        made.append(persistent(settings.pop("script", script), **settings))
        return made[-1]

    yield factory
    for executor in made:
        await executor.aclose()


async def test_a_process_serves_many_tasks_and_sees_each_tasks_identity(make: Make) -> None:
    executor = make()
    first = identity(await executor.run(ctx("1", attempt=2), task("whoami")))
    second = identity(await executor.run(ctx("2"), task("whoami")))
    assert first["pid"] == second["pid"]
    assert executor.started_processes == 1
    # In the frame header and, for code that reads os.environ, in the environment too.
    assert (first["task"], first["envTask"], first["attempt"]) == ("1", "1", "2")
    assert (second["task"], second["envTask"], second["attempt"]) == ("2", "2", "1")
    assert first["name"] == "bond"


async def test_a_number_is_written_into_the_price_as_for_one_shot_scripts(make: Make) -> None:
    outcome = await make().run(ctx(), task("price"))
    assert outcome.completed, outcome.error
    assert price_of(outcome.result_xml) == "101.25"


async def test_the_same_script_runs_one_shot_through_the_helper(tmp_path: Path) -> None:
    executor = ScriptExecutor(python_script(tmp_path), 10, {})
    outcome = await executor.run(ctx(), task("price"))
    assert outcome.completed, outcome.error
    assert price_of(outcome.result_xml) == "101.25"
    failed = await executor.run(ctx(), task("raise"))
    assert "exit code 1" in failed.error and "ValueError: no curve for EOD" in failed.error
    nan = await executor.run(ctx(), task("nan"))
    assert "exit code 1" in nan.error and "returned nan" in nan.error
    noisy = await executor.run(ctx(), task("stdout"))  # printf and os.write(1) reach stderr, not the result
    assert noisy.completed, noisy.error
    assert price_of(noisy.result_xml) == "99.50"


async def test_a_raising_handler_fails_the_attempt_with_its_exception_and_the_process_lives_on(make: Make) -> None:
    executor = make()
    before = pid_of(await executor.run(ctx(), task("whoami")))
    outcome = await executor.run(ctx(), task("raise"))
    assert not outcome.completed
    assert errortext.summary(outcome.error) == "script raised ValueError"
    assert "ValueError: no curve for EOD" in outcome.error
    assert "warm_pricer.py" in outcome.error  # the traceback's tail
    assert pid_of(await executor.run(ctx(), task("whoami"))) == before


@pytest.mark.parametrize(("behaviour", "words"), [
    ("nan", "returned nan; a price must be a finite positive number"),
    ("inf", "returned inf; a price must be a finite positive number"),
    ("dict", "returned dict; expected XML (bytes or str) or a number"),
])
async def test_a_return_that_is_no_result_fails_naming_it(make: Make, behaviour: str, words: str) -> None:
    outcome = await make().run(ctx(), task(behaviour))
    assert not outcome.completed
    assert errortext.summary(outcome.error) == f"script: {words}"


async def test_stdout_writes_from_c_and_python_do_not_corrupt_the_frames(make: Make) -> None:
    executor = make()
    outcome = await executor.run(ctx(), task("stdout"))
    assert outcome.completed, outcome.error
    assert price_of(outcome.result_xml) == "99.50"
    assert b"noise" not in outcome.result_xml
    # The process is still in step: the next task gets its own answer.
    assert identity(await executor.run(ctx("2"), task("whoami")))["task"] == "2"


@pytest.mark.parametrize(("behaviour", "words"), [
    ("exit", "process exited during the task with exit code 3"),
    ("sigkill", "process exited during the task with exit code -9 (killed by SIGKILL)"),
])
async def test_a_process_that_dies_fails_the_attempt_and_is_replaced(make: Make, behaviour: str, words: str) -> None:
    executor = make()
    before = pid_of(await executor.run(ctx(), task("whoami")))
    outcome = await executor.run(ctx(), task(behaviour))
    assert not outcome.completed
    assert errortext.summary(outcome.error).startswith(f"script: {words}; the process is replaced")
    if behaviour == "exit":
        assert "giving up on this one" in outcome.error  # the stderr tail
    after = pid_of(await executor.run(ctx(), task("whoami")))
    assert after != before
    assert executor.started_processes == 2


async def test_a_timeout_kills_the_process_with_its_children_and_a_new_one_serves_next(make: Make) -> None:
    executor = make(task_timeout_ms=1500)
    before = pid_of(await executor.run(ctx(), task("whoami")))
    outcome = await executor.run(ctx(), task("sleep-with-child"))
    assert not outcome.completed
    assert errortext.summary(outcome.error).startswith("script ran past VNAS_TASK_TIMEOUT_MS (1500 ms); its process "
                                                       "was killed")
    child = int(re.search(r"child=(\d+)", outcome.error).group(1))  # type: ignore[union-attr]
    await wait_until(lambda: gone(before, child), timeout=5)
    assert pid_of(await executor.run(ctx(), task("whoami"))) != before


async def test_text_instead_of_frames_fails_the_attempt_naming_it(tmp_path: Path, make: Make) -> None:
    outcome = await make(script=str(SCRIPTS / "garbage.sh")).run(ctx(), task("price"))
    assert not outcome.completed
    assert "process wrote a bad frame: output is not a framed-v1 frame: it starts with b'hello, I am" in outcome.error


async def test_a_frame_with_a_broken_header_fails_the_attempt(tmp_path: Path, make: Make) -> None:
    script = python_script(tmp_path, SCRIPTS / "bad_header.py", name="bad-header.sh")
    outcome = await make(script=script).run(ctx(), task("price"))
    assert not outcome.completed
    assert "process wrote a bad frame: frame header is not JSON" in outcome.error


async def test_a_result_over_the_limit_is_refused_and_the_process_replaced(make: Make) -> None:
    executor = make(max_result_bytes=1000)
    outcome = await executor.run(ctx(), task("big"))
    assert not outcome.completed
    assert "result exceeds VNAS_MAX_RESULT_BYTES=1000 bytes" in outcome.error
    assert (await executor.run(ctx(), task("price"))).completed
    assert executor.started_processes == 2


async def test_a_process_is_recycled_after_the_task_limit(make: Make) -> None:
    executor = make(warm_max_tasks=3, concurrency=1)
    pids = [pid_of(await executor.run(ctx(str(n)), task("whoami"))) for n in range(7)]
    assert len(set(pids[:3])) == 1 and len(set(pids[3:6])) == 1 and len(set(pids)) == 3
    await wait_until(lambda: gone(pids[0]), timeout=5)


async def test_a_leaking_process_is_recycled_once_past_the_memory_limit(make: Make) -> None:
    executor = make(warm_max_rss_mb=90, concurrency=1)
    first = pid_of(await executor.run(ctx(), task("whoami")))
    outcomes = [await executor.run(ctx(), task("leak")) for _ in range(3)]
    assert all(outcome.completed for outcome in outcomes), [o.error for o in outcomes]
    assert pid_of(await executor.run(ctx(), task("whoami"))) != first
    await wait_until(lambda: gone(first), timeout=5)


async def test_one_process_never_runs_two_tasks_at_once(make: Make) -> None:
    executor = make(concurrency=2)
    outcomes = await asyncio.gather(*(executor.run(ctx(str(n)), task("hold")) for n in range(6)))
    spans: dict[str, list[tuple[float, float]]] = {}
    for outcome in outcomes:
        found = identity(outcome)
        spans.setdefault(found["pid"], []).append((float(found["start"]), float(found["end"])))
    assert len(spans) == 2  # one process per slot
    for intervals in spans.values():
        intervals.sort()
        assert all(earlier[1] <= later[0] for earlier, later in itertools.pairwise(intervals))


async def test_cancelling_a_task_kills_its_process(make: Make) -> None:
    executor = make()
    running = asyncio.create_task(executor.run(ctx(), task("sleep")))
    me = psutil.Process()

    def pricer_children() -> list[psutil.Process]:
        found = []
        for child in me.children():
            try:
                if "warm_pricer.py" in " ".join(child.cmdline()):
                    found.append(child)
            except psutil.Error:
                pass  # a process of an earlier test, gone or a zombie by now
        return found

    async def started() -> bool:
        return bool(pricer_children())

    await wait_until(started, timeout=10)
    pid = pricer_children()[0].pid
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    await wait_until(lambda: gone(pid), timeout=5)


async def test_aclose_stops_idle_processes(make: Make) -> None:
    executor = make()
    pid = pid_of(await executor.run(ctx(), task("whoami")))
    await executor.aclose()
    assert not process_alive(pid)


async def test_a_one_shot_script_in_persistent_mode_fails_saying_it_never_said_hello(
    tmp_path: Path, make: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The start-up floor (10 s) lowered so the test does not wait it out; the task timeout is below it.
    monkeypatch.setattr(warm, "MIN_STARTUP_S", 1.5)
    script = write_script(tmp_path, "cat > /dev/null; echo 1", name="reads-to-eof.sh")
    outcome = await make(script=script, task_timeout_ms=1000).run(ctx(), task("price"))
    assert errortext.summary(outcome.error).startswith(
        "script did not send its framed-v1 hello frame within 1500 ms of starting")
