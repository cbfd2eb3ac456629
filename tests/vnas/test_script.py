"""The valuation script contract (SPEC section 9) as ScriptExecutor runs it, with real processes."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest
from lxml import etree

from tests.conftest import wait_until
from tests.vnas.conftest import CTX, TASK_XML, price_of, process_alive, write_script
from vnas.executors.script import STDERR_TAIL_BYTES, ScriptExecutor
from vnas.scriptenv import SAFE_PATH
from vncommon import errortext
from vncommon.errors import ConfigError


def file_exists(path: str) -> bool:
    return os.path.exists(path)


def executor(script: str, timeout_s: float = 10.0, max_result_bytes: int = 10 * 1024 * 1024) -> ScriptExecutor:
    return ScriptExecutor(script, timeout_s, dict(os.environ), max_result_bytes=max_result_bytes)


async def test_xml_output_is_the_result(tmp_path: Path) -> None:
    script = write_script(tmp_path, 'sed "s#<amount/>#<amount>99.10</amount>#" "$1"')
    outcome = await executor(script).run(CTX, TASK_XML)
    assert outcome.completed, outcome.error
    assert price_of(outcome.result_xml) == "99.10"
    assert outcome.result_xml.startswith(b"<?xml")


async def test_a_bare_valuation_element_is_a_valid_result(tmp_path: Path) -> None:
    script = write_script(tmp_path, "echo '<valuation name=\"bond\"><price>1</price></valuation>'")
    outcome = await executor(script).run(CTX, TASK_XML)
    assert outcome.completed, outcome.error
    assert etree.fromstring(outcome.result_xml).tag == "valuation"


async def test_number_output_is_written_with_two_decimals_into_the_price(tmp_path: Path) -> None:
    script = write_script(tmp_path, "echo '  101.5  '")
    outcome = await executor(script).run(CTX, TASK_XML)
    assert outcome.completed, outcome.error
    assert price_of(outcome.result_xml) == "101.50"
    # The whole task document is the result: its other content is kept.
    assert etree.fromstring(outcome.result_xml).findtext(".//coupon") == "0.0425"


async def test_non_zero_exit_fails_with_exit_code_and_stderr(tmp_path: Path) -> None:
    script = write_script(tmp_path, "echo 100; echo 'curve not found' >&2; exit 3")
    outcome = await executor(script).run(CTX, TASK_XML)
    assert not outcome.completed
    assert "exit code 3" in outcome.error
    assert "curve not found" in outcome.error


async def test_only_the_tail_of_a_long_stderr_is_reported(tmp_path: Path) -> None:
    body = "i=0; while [ $i -lt 500 ]; do echo 'EARLY-LINE-xxxxxxxxxxxxxxxxxxxxxx' >&2; i=$((i+1)); done; " \
           "echo 'THE-LAST-WORDS' >&2; exit 1"
    outcome = await executor(write_script(tmp_path, body)).run(CTX, TASK_XML)
    assert "THE-LAST-WORDS" in outcome.error
    assert len(outcome.error) < STDERR_TAIL_BYTES + 200


async def test_output_that_is_not_xml_fails_with_exit_code_and_stderr(tmp_path: Path) -> None:
    script = write_script(tmp_path, "echo '<valuation><price>' ; echo warned >&2")
    outcome = await executor(script).run(CTX, TASK_XML)
    assert not outcome.completed
    assert "not valid XML" in outcome.error
    assert "exit code 0" in outcome.error
    assert "warned" in outcome.error


async def test_text_that_is_neither_xml_nor_a_number_fails(tmp_path: Path) -> None:
    outcome = await executor(write_script(tmp_path, "echo 'price is 12'")).run(CTX, TASK_XML)
    assert not outcome.completed
    assert "neither XML nor a single number" in outcome.error


async def test_xml_that_is_not_a_task_or_valuation_fails(tmp_path: Path) -> None:
    outcome = await executor(write_script(tmp_path, "echo '<report><ok/></report>'")).run(CTX, TASK_XML)
    assert not outcome.completed
    assert "<report>" in outcome.error


async def test_empty_output_fails(tmp_path: Path) -> None:
    outcome = await executor(write_script(tmp_path, "echo '   '")).run(CTX, TASK_XML)
    assert not outcome.completed
    assert "empty" in outcome.error


async def test_zero_and_negative_numbers_fail(tmp_path: Path) -> None:
    for number in ("0", "-12.5", "0.000"):
        outcome = await executor(write_script(tmp_path, f"echo '{number}'")).run(CTX, TASK_XML)
        assert not outcome.completed, number
        assert "not positive" in outcome.error


async def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    body = f"sleep 300 & echo $! > '{pid_file}'; echo 'started child' >&2; wait"
    outcome = await executor(write_script(tmp_path, body), timeout_s=0.5).run(CTX, TASK_XML)
    assert not outcome.completed
    assert "VNAS_TASK_TIMEOUT_MS" in outcome.error
    assert "started child" in outcome.error
    child = int(pid_file.read_text())

    async def child_gone() -> bool:
        return not process_alive(child)

    await wait_until(child_gone, timeout=5)


async def test_cancelling_a_run_kills_the_script_and_its_children(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    script = write_script(tmp_path, f"sleep 300 & echo $! > '{pid_file}'; wait")
    run = asyncio.create_task(executor(script).run(CTX, TASK_XML))

    async def child_started() -> bool:
        return pid_file.exists() and pid_file.read_text().strip() != ""

    await wait_until(child_started)
    run.cancel()
    [ended] = await asyncio.gather(run, return_exceptions=True)
    assert isinstance(ended, asyncio.CancelledError)  # cancelled, not turned into an outcome
    child = int(pid_file.read_text())

    async def child_gone() -> bool:
        return not process_alive(child)

    await wait_until(child_gone, timeout=5)
    assert not process_alive(child)


async def test_env_argv_and_stdin_reach_the_script(tmp_path: Path) -> None:
    out = tmp_path / "seen"
    out.mkdir()
    body = (
        f'echo "$VN_REQUEST_ID|$VN_GROUP_INDEX|$VN_TASK_ID|$VN_ATTEMPT|$VN_VALUATION_NAME|$VN_TRACE_ID"'
        f" > '{out}/env'\n"
        f"echo \"$#\" > '{out}/argc'\n"
        f"echo \"$1\" > '{out}/path'\n"
        f"cp \"$1\" '{out}/file.xml'\n"
        f"cat > '{out}/stdin.xml'\n"
        "echo 42"
    )
    outcome = await executor(write_script(tmp_path, body)).run(CTX, TASK_XML)
    assert outcome.completed, outcome.error
    assert (out / "env").read_text().strip() == "req-1|0|1|1|bond|trace-1"
    assert (out / "argc").read_text().strip() == "1"
    assert (out / "file.xml").read_bytes() == TASK_XML
    assert (out / "stdin.xml").read_bytes() == TASK_XML
    # The temp file holding the task XML is removed afterwards.
    assert not file_exists((out / "path").read_text().strip())


async def test_the_script_runs_without_a_shell_even_with_spaces_in_its_path(tmp_path: Path) -> None:
    folder = tmp_path / "my scripts; rm -rf x"
    folder.mkdir()
    outcome = await executor(write_script(folder, "echo 7.5", name="price me.sh")).run(CTX, TASK_XML)
    assert outcome.completed, outcome.error
    assert price_of(outcome.result_xml) == "7.50"


async def test_a_script_that_cannot_start_is_a_failed_outcome(tmp_path: Path) -> None:
    outcome = await executor(str(tmp_path / "missing.sh")).run(CTX, TASK_XML)
    assert not outcome.completed
    assert "cannot start script" in outcome.error


async def test_a_script_killed_by_a_signal_names_the_signal(tmp_path: Path) -> None:
    outcome = await executor(write_script(tmp_path, "kill -TERM $$")).run(CTX, TASK_XML)
    assert not outcome.completed
    assert "SIGTERM" in outcome.error


async def test_output_past_the_result_limit_fails_fast_and_kills_the_script(tmp_path: Path) -> None:
    pid_file = tmp_path / "writer.pid"
    script = write_script(tmp_path, f"sh -c 'echo $$ > \"{pid_file}\"; exec yes 12345'")
    started = time.monotonic()
    outcome = await executor(script, max_result_bytes=1000).run(CTX, TASK_XML)
    assert not outcome.completed
    assert outcome.error.startswith("result exceeds VNAS_MAX_RESULT_BYTES=1000 bytes; the output was not read")
    assert "killed by SIGKILL" in outcome.error
    assert time.monotonic() - started < 3
    writer = int(pid_file.read_text())

    async def writer_gone() -> bool:
        return not process_alive(writer)

    await wait_until(writer_gone, timeout=5)


async def test_output_of_exactly_the_limit_is_read_whole(tmp_path: Path) -> None:
    valuation = b'<valuation name="bond"><price>1</price></valuation>'
    script = write_script(tmp_path, f"printf '%s' '{valuation.decode()}'")
    # The stored form carries an XML declaration: the limit leaves room for it.
    outcome = await executor(script, max_result_bytes=len(valuation) + 100).run(CTX, TASK_XML)
    assert outcome.completed, outcome.error
    assert etree.fromstring(outcome.result_xml).findtext("price") == "1"
    short = await executor(script, max_result_bytes=len(valuation) - 1).run(CTX, TASK_XML)
    assert not short.completed and "VNAS_MAX_RESULT_BYTES" in short.error


async def test_a_stored_result_over_the_limit_fails_even_when_the_output_was_short(tmp_path: Path) -> None:
    # "42" is three bytes, but the legacy number form stores the whole task document.
    outcome = await executor(write_script(tmp_path, "echo 42"), max_result_bytes=100).run(CTX, TASK_XML)
    assert not outcome.completed
    assert outcome.error.startswith("script result exceeds VNAS_MAX_RESULT_BYTES=100 bytes (")


async def test_a_flood_on_stderr_keeps_only_its_tail(tmp_path: Path) -> None:
    body = "head -c 50000000 /dev/zero | tr '\\0' e >&2; echo THE-LAST-WORDS >&2; exit 2"
    started = time.monotonic()
    outcome = await executor(write_script(tmp_path, body)).run(CTX, TASK_XML)
    assert not outcome.completed
    assert "exit code 2" in outcome.error and "THE-LAST-WORDS" in outcome.error
    assert len(outcome.error) < STDERR_TAIL_BYTES + 200
    assert time.monotonic() - started < 10


async def test_a_background_child_holding_the_pipes_does_not_hold_up_the_task(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    script = write_script(tmp_path, f"sleep 300 & echo $! > '{pid_file}'; echo 42")
    started = time.monotonic()
    outcome = await executor(script, timeout_s=60).run(CTX, TASK_XML)
    assert outcome.completed, outcome.error
    assert time.monotonic() - started < 3  # not the 60 s timeout: the child dies when the script ends
    child = int(pid_file.read_text())

    async def child_gone() -> bool:  # SIGKILL was sent; the kernel takes a moment to tear the process down
        return not process_alive(child)

    await wait_until(child_gone, timeout=1.0)


async def test_the_script_sees_a_minimal_environment_and_the_allowlist(tmp_path: Path) -> None:
    out = tmp_path / "env.txt"
    worker_env = {"PATH": "/opt/worker/bin:/usr/bin:/bin", "HOME": "/home/vn", "LANG": "C.UTF-8",
                  "REDIS_URL": "redis://:pw@db:6379/0", "GRPC_API_TOKENS": "t1", "GRPC_TLS_KEY_FILE": "/k.pem",
                  "AWS_SECRET_ACCESS_KEY": "s", "MARKET_DATA_URL": "https://md", "UNLISTED": "x"}
    script = write_script(tmp_path, f"env > '{out}'; echo 42")
    outcome = await ScriptExecutor(script, 10, worker_env, allow_env=("MARKET_DATA_URL",)).run(CTX, TASK_XML)
    assert outcome.completed, outcome.error
    seen = dict(line.split("=", 1) for line in out.read_text().splitlines() if "=" in line)
    assert seen["PATH"] == SAFE_PATH and seen["HOME"] == "/home/vn" and seen["LANG"] == "C.UTF-8"
    assert seen["MARKET_DATA_URL"] == "https://md" and seen["VN_TASK_ID"] == "1"
    for hidden in ("REDIS_URL", "GRPC_API_TOKENS", "GRPC_TLS_KEY_FILE", "AWS_SECRET_ACCESS_KEY", "UNLISTED"):
        assert hidden not in seen, hidden


def test_a_secret_in_the_allowlist_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="REDIS_URL, a secret of the mesh"):
        ScriptExecutor(write_script(tmp_path, "echo 1"), 10, {}, allow_env=("REDIS_URL",))


async def test_the_first_line_of_an_error_carries_no_script_output(tmp_path: Path) -> None:
    script = write_script(tmp_path, "echo 'PRIVATE-OUTPUT'; echo 'PRIVATE-STDERR' >&2")
    outcome = await executor(script).run(CTX, TASK_XML)
    assert not outcome.completed
    assert "PRIVATE-OUTPUT" in outcome.error and "PRIVATE-STDERR" in outcome.error  # kept for the detail
    summary = errortext.summary(outcome.error)
    assert summary == "script output is neither XML nor a single number (14 bytes); exit code 0"
