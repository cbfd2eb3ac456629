"""Result normalisation shared by every executor, the in-process Python executor and build_executor."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from lxml import etree

from tests.vnas import pricers
from tests.vnas.conftest import CTX, TASK_XML, price_of, write_script
from vnas.executors import PythonExecutor, ScriptExecutor, build_executor, normalise_result
from vnas.settings import VnasSettings
from vnas.task import TaskFailed
from vncommon.errors import ConfigError


def test_a_number_is_rounded_to_two_decimals_in_the_first_price_amount() -> None:
    assert price_of(normalise_result(TASK_XML, b"1e2\n")) == "100.00"
    assert price_of(normalise_result(TASK_XML, b"99.999")) == "100.00"
    assert price_of(normalise_result(TASK_XML, b"+0.5")) == "0.50"
    assert price_of(normalise_result(TASK_XML, b"100.125")) == "100.13"


def test_a_number_creates_the_price_path_when_the_task_lacks_it() -> None:
    task = b"<vnml><project><group><valuation name='v'><instrument/></valuation></group></project></vnml>"
    result = etree.fromstring(normalise_result(task, b"12.3"))
    assert result.findtext("project/group/valuation/analytics/price/amount") == "12.30"


@pytest.mark.parametrize("output", [b"nan", b"inf", b"-1", b"0", b"12,5", b"1 2", b"1e400"])
def test_numbers_that_are_not_positive_prices_fail(output: bytes) -> None:
    with pytest.raises(TaskFailed):
        normalise_result(TASK_XML, output)


def test_a_task_document_result_is_reserialised_as_utf8_with_declaration() -> None:
    result = normalise_result(TASK_XML, b"<vnml><project><group><valuation name='x'/></group></project></vnml>")
    assert result.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")


@pytest.mark.parametrize("output", [
    b"<valuation xmlns='urn:x' name='x'/>",
    b"<v:valuation xmlns:v='urn:x' name='x'/>",
    b"<vnml xmlns='urn:x'><project><group><valuation name='x'/></group></project></vnml>",
])
def test_a_namespaced_result_is_refused_as_vnvs_would_refuse_it(output: bytes) -> None:
    with pytest.raises(TaskFailed, match="no namespace"):
        normalise_result(TASK_XML, output)


def test_a_result_with_a_doctype_is_refused() -> None:
    with pytest.raises(TaskFailed, match="DOCTYPE"):
        normalise_result(TASK_XML, b"<!DOCTYPE valuation [<!ENTITY a 'b'>]><valuation>&a;</valuation>")


def test_binary_output_fails_without_echoing_it() -> None:
    with pytest.raises(TaskFailed, match="not UTF-8"):
        normalise_result(TASK_XML, b"\xff\xfe\x00garbage")


async def test_a_plain_python_function_runs_in_a_thread_and_its_number_becomes_the_price() -> None:
    pricers.CALLS.clear()
    outcome = await PythonExecutor("tests.vnas.pricers:flat_price", 5).run(CTX, TASK_XML)
    assert outcome.completed, outcome.error
    assert price_of(outcome.result_xml) == "100.13"
    assert pricers.CALLS and pricers.CALLS[0] != threading.current_thread().name


async def test_a_python_function_may_return_a_float() -> None:
    outcome = await PythonExecutor("tests.vnas.pricers:float_price", 5).run(CTX, TASK_XML)
    assert price_of(outcome.result_xml) == "99.50"


async def test_an_async_python_function_receives_the_task_context() -> None:
    outcome = await PythonExecutor("tests.vnas.pricers:bare_valuation", 5).run(CTX, TASK_XML)
    assert outcome.completed, outcome.error
    root = etree.fromstring(outcome.result_xml)
    assert (root.tag, root.get("name"), root.get("task")) == ("valuation", "bond", "1")


async def test_an_exception_in_a_python_function_is_a_failed_outcome() -> None:
    outcome = await PythonExecutor("tests.vnas.pricers:broken", 5).run(CTX, TASK_XML)
    assert not outcome.completed
    assert "ValueError: no curve for EOD" in outcome.error


async def test_a_python_function_past_the_timeout_fails() -> None:
    outcome = await PythonExecutor("tests.vnas.pricers:slow", 0.2).run(CTX, TASK_XML)
    assert not outcome.completed
    assert "VNAS_TASK_TIMEOUT_MS" in outcome.error


async def test_a_python_function_returning_another_type_fails() -> None:
    outcome = await PythonExecutor("tests.vnas.pricers:wrong_type", 5).run(CTX, TASK_XML)
    assert not outcome.completed
    assert "returned dict" in outcome.error


@pytest.mark.parametrize("target", ["tests.vnas.no_such_module:f", "tests.vnas.pricers:missing",
                                    "tests.vnas.pricers:NOT_CALLABLE"])
def test_an_executor_that_cannot_be_loaded_is_a_config_error_naming_vnas_executor(target: str) -> None:
    with pytest.raises(ConfigError, match="VNAS_EXECUTOR"):
        build_executor(VnasSettings(executor=target))


def test_build_executor_picks_the_script_or_the_python_function(tmp_path: Path) -> None:
    script = write_script(tmp_path, "echo 1")
    assert isinstance(build_executor(VnasSettings(script=script), {}), ScriptExecutor)
    assert isinstance(build_executor(VnasSettings(executor="tests.vnas.pricers:flat_price")), PythonExecutor)
