"""examples/price.py run as a real valuation script through the script executor."""

from __future__ import annotations

import os

from lxml import etree

from tests.conftest import ROOT
from tests.vnas.conftest import CTX, TASK_XML, price_of
from vnas.executors.script import ScriptExecutor

PRICE_SCRIPT = str(ROOT / "examples" / "price.py")

PRICE_TASK = b"""<vnml><project name="eod"><group name="price"><valuation name="bond">
<instrument name="PAR"><coupon>0.05</coupon><maturity>10</maturity><frequency>2</frequency></instrument>
<market name="EOD"><curve><rate>0.05</rate></curve></market>
<analytics><price><amount/></price></analytics></valuation></group></project></vnml>"""

RISK_TASK = b"""<vnml><project><group name="risk"><valuation name="dv01">
<instrument name="UST10"><coupon>0.0425</coupon><maturity>10</maturity></instrument>
<basePrice>98.50</basePrice></valuation></group></project></vnml>"""


def run_env(**extra: str) -> dict[str, str]:
    return {**os.environ, **extra}


async def test_a_bond_at_par_prices_at_its_face() -> None:
    outcome = await ScriptExecutor(PRICE_SCRIPT, 10, run_env()).run(CTX, PRICE_TASK)
    assert outcome.completed, outcome.error
    assert price_of(outcome.result_xml) == "100.00"


async def test_a_task_without_optional_inputs_is_priced_from_the_defaults() -> None:
    outcome = await ScriptExecutor(PRICE_SCRIPT, 10, run_env()).run(CTX, TASK_XML)
    assert outcome.completed, outcome.error
    # Coupon 4.25% for 10 years at the default 4% rate: just above par.
    assert 100 < float(price_of(outcome.result_xml)) < 103


async def test_a_valuation_with_a_base_price_gets_a_dv01_scaled_from_it() -> None:
    outcome = await ScriptExecutor(PRICE_SCRIPT, 10, run_env()).run(CTX, RISK_TASK)
    assert outcome.completed, outcome.error
    valuation = etree.fromstring(outcome.result_xml).find("project/group/valuation")
    assert valuation is not None
    assert valuation.findtext("analytics/price/amount") == "98.50"
    assert 0.07 < float(valuation.findtext("analytics/dv01/amount") or 0) < 0.09


async def test_the_legacy_number_form_is_available() -> None:
    executor = ScriptExecutor(PRICE_SCRIPT, 10, run_env(PRICE_OUTPUT="number"), allow_env=("PRICE_OUTPUT",))
    outcome = await executor.run(CTX, PRICE_TASK)
    assert outcome.completed, outcome.error
    assert price_of(outcome.result_xml) == "100.00"
    # The number form gives the task document back with only the price set (no analytics/yield).
    assert etree.fromstring(outcome.result_xml).find(".//analytics/yield") is None


async def test_a_document_without_a_valuation_fails_with_a_message() -> None:
    outcome = await ScriptExecutor(PRICE_SCRIPT, 10, run_env()).run(CTX, b"<vnml/>")
    assert not outcome.completed
    assert "exit code 2" in outcome.error and "no project/group/valuation" in outcome.error


async def test_maturity_years_is_read_so_a_two_year_note_is_priced_as_one() -> None:
    two_year = PRICE_TASK.replace(b"<maturity>10</maturity>", b"<maturityYears>2</maturityYears>").replace(
        b"<coupon>0.05</coupon>", b"<coupon>0.04</coupon>")
    outcome = await ScriptExecutor(PRICE_SCRIPT, 10, run_env()).run(CTX, two_year)
    assert outcome.completed, outcome.error
    # 4% semiannual coupons for 2 years at 5%: 2 * sum(1 / 1.025**k, k=1..4) + 100 / 1.025**4.
    expected = 2 * sum(1 / 1.025**k for k in range(1, 5)) + 100 / 1.025**4
    assert price_of(outcome.result_xml) == f"{expected:.2f}"


async def test_a_field_that_is_not_a_number_fails_instead_of_taking_the_default() -> None:
    bad = PRICE_TASK.replace(b"<maturity>10</maturity>", b"<maturityYears>two</maturityYears>")
    outcome = await ScriptExecutor(PRICE_SCRIPT, 10, run_env()).run(CTX, bad)
    assert not outcome.completed
    assert "maturityYears" in (outcome.error or "")
