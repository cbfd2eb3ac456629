"""The console entry points as real subprocesses: the one-shot script contract of SPEC section 9."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.pricers.tasks import equity, figure, instrument, task, zero_curve

BIN = Path(sys.executable).parent
MARKET = zero_curve("USD", {"1Y": 0.04, "10Y": 0.04}) + equity("XYZ", "USD", 100.0, 0.0, 0.2)
OPTION = task(instrument("OPT", "europeanOption", underlying="XYZ", optionType="put", strike=95,
                         maturity="2026-06-30", quantity=10), MARKET)


def run(script: str, task_xml: bytes, tmp_path: Path) -> subprocess.CompletedProcess[bytes]:
    path = tmp_path / "task.xml"
    path.write_bytes(task_xml)
    return subprocess.run([str(BIN / script), str(path)], input=task_xml, capture_output=True, timeout=60)


def test_the_product_script_prints_the_result_document(tmp_path: Path) -> None:
    done = run("vn-price-european", OPTION, tmp_path)
    assert done.returncode == 0, done.stderr
    assert figure(done.stdout, "unitPrice") > 0
    assert b"<market" not in done.stdout


def test_a_product_script_refuses_another_product_with_one_line_on_stderr(tmp_path: Path) -> None:
    done = run("vn-price-bond", OPTION, tmp_path)
    assert done.returncode == 1
    assert done.stdout == b""
    line = done.stderr.decode().strip()
    assert "\n" not in line and "europeanOption OPT" in line and "instrument/product" in line


def test_bad_input_exits_non_zero_naming_the_field(tmp_path: Path) -> None:
    done = run("vn-price", OPTION.replace(b"<strike>95</strike>", b""), tmp_path)
    assert done.returncode == 1
    assert b"europeanOption OPT: field instrument/strike: is missing" in done.stderr


def test_the_task_may_come_on_stdin(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "pricers"], input=OPTION, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert figure(done.stdout, "unitPrice") > 0


async def test_a_pricer_script_serves_many_tasks_warm_as_a_persistent_script(tmp_path: Path) -> None:
    from tests.vnas.warmtasks import ctx, persistent

    executor = persistent(str(BIN / "vn-price"))
    try:
        first = await executor.run(ctx("1"), OPTION)
        second = await executor.run(ctx("2"), OPTION)
        refused = await executor.run(ctx("3"), OPTION.replace(b"<strike>95</strike>", b""))
    finally:
        await executor.aclose()
    assert first.completed and second.completed, (first.error, second.error)
    assert figure(first.result_xml, "unitPrice") == figure(second.result_xml, "unitPrice") > 0
    assert executor.started_processes == 1  # QuantLib loaded once for every task
    assert not refused.completed and "europeanOption OPT: field instrument/strike: is missing" in refused.error
