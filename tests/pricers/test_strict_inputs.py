"""Bad input fails the task with a PricingError naming the product, the instrument and the field."""

from __future__ import annotations

import pytest

import pricers
from tests.pricers.tasks import equity, instrument, task, value, zero_curve

MARKET = zero_curve("USD", {"1Y": 0.04, "10Y": 0.04}) + equity("XYZ", "USD", 100.0, 0.0, 0.2)
OPTION = dict(underlying="XYZ", optionType="call", strike=100, maturity="2026-06-30", quantity=1)


def option(**changes: object) -> str:
    values = {**OPTION, **changes}
    return instrument("OPT1", "europeanOption", **{k: v for k, v in values.items() if v is not None})


def fails(task_xml: bytes, *parts: str) -> str:
    with pytest.raises(pricers.PricingError) as caught:
        value(task_xml)
    message = str(caught.value)
    for part in parts:
        assert part in message, message
    assert "\n" not in message
    return message


def test_a_missing_field_is_named_with_the_instrument() -> None:
    fails(task(option(strike=None), MARKET), "europeanOption OPT1", "instrument/strike", "missing")


def test_an_unknown_field_is_refused() -> None:
    fails(task(option(barrier=120), MARKET), "europeanOption OPT1", "unknown field instrument/barrier")


@pytest.mark.parametrize("date", ["2026-02-30", "30/06/2026", "2026-6-30"])
def test_a_bad_date_is_refused(date: str) -> None:
    fails(task(option(maturity=date), MARKET), "europeanOption OPT1", "instrument/maturity", repr(date))


def test_a_bad_valuation_date_is_refused() -> None:
    fails(task(option(), MARKET, today="2025-13-01"), "analytics/evaluation/date", "'2025-13-01'")


def test_an_expiry_on_or_before_the_valuation_date_is_refused() -> None:
    fails(task(option(maturity="2025-06-30"), MARKET), "instrument/maturity", "not after the valuation date")


def test_an_unknown_product_is_refused() -> None:
    fails(task(instrument("X1", "cdsIndex"), MARKET), "instrument X1", "instrument/product", "'cdsIndex'")


def test_an_unknown_calculator_is_refused() -> None:
    fails(task(option(), MARKET, calculator="xva"), "calculator/@name", "'xva'")


@pytest.mark.parametrize("text", ["nan", "inf", "abc", ""])
def test_a_field_that_is_not_a_finite_number_is_refused(text: str) -> None:
    fails(task(option(strike=text), MARKET), "europeanOption OPT1", "instrument/strike")


def test_a_non_finite_result_is_refused() -> None:
    # 1e308 contracts of a ~9 dollar option overflow to infinity.
    fails(task(option(quantity="1e308"), MARKET), "europeanOption OPT1", "price/amount is inf")


def test_missing_market_data_is_named() -> None:
    fails(task(option(underlying="ABC"), MARKET), "europeanOption OPT1", "instrument/underlying", "'ABC'")
    no_curve = equity("XYZ", "USD", 100.0, 0.0, 0.2)
    fails(task(option(), no_curve), "europeanOption OPT1", "no curve named 'USD'")


def test_a_bad_market_field_is_named_with_its_path() -> None:
    bad = MARKET.replace("<dayCount>Actual/365F</dayCount>", "<dayCount>Act/999</dayCount>", 1)
    fails(task(option(), bad), "europeanOption OPT1", "market/curve[@name='USD']/dayCount", "'Act/999'")


def test_an_unknown_analytics_figure_is_refused() -> None:
    fails(task(option(), MARKET, analytics="<yield/>"), "analytics/yield", "not a figure")


def test_an_unknown_valuation_child_is_refused() -> None:
    fails(task(option(), MARKET, extra="<model name='HW'/>"), "unknown field valuation/model")


def test_a_task_that_is_not_xml_is_refused() -> None:
    with pytest.raises(pricers.PricingError, match="task"):
        value(b"not xml")


def test_a_risk_task_whose_base_price_is_from_another_market_is_refused() -> None:
    base = "<base><price><amount>1.00</amount><currency>USD</currency></price></base>"
    fails(task(option(), MARKET, calculator="risk", extra=base), "europeanOption OPT1", "base/price/amount",
          "another market")


def test_an_unknown_kind_of_market_data_is_named_with_the_instrument() -> None:
    fails(task(option(), MARKET + "<repo name='GC'/>"), "europeanOption OPT1", "valuation/market/repo",
          "unknown market data")


def test_a_one_product_entry_refuses_other_products_and_calculators() -> None:
    with pytest.raises(pricers.PricingError, match=r"europeanOption OPT1: .*only 'bond'"):
        pricers.value_only(task(option(), MARKET), "bond")
    with pytest.raises(pricers.PricingError, match="only aggregates"):
        pricers.value_only(task(option(), MARKET), "aggregate")
    totals = task(option(), MARKET, calculator="aggregate")
    with pytest.raises(pricers.PricingError, match="only 'bond'"):
        pricers.value_only(totals, "bond")
