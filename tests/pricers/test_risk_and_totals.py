"""Vega by bump and reprice against the closed form, and totals against plain sums of the results."""

from __future__ import annotations

import math
from statistics import NormalDist

import pytest
from lxml import etree

from tests.pricers.tasks import equity, figure, instrument, task, value, zero_curve

SPOT, RATE, VOL, QUANTITY = 100.0, 0.04, 0.25, 300
MARKET = (zero_curve("USD", {"1Y": RATE, "10Y": RATE}) + zero_curve("EUR", {"1Y": 0.02, "10Y": 0.02})
          + equity("XYZ", "USD", SPOT, 0.0, VOL) + '<fxSpot name="EURUSD">1.17</fxSpot>')
OPTION = instrument("OPT", "europeanOption", book="EQ", underlying="XYZ", optionType="call", strike=100,
                    maturity="2026-06-30", quantity=QUANTITY)
FORWARD = instrument("FWD", "fxForward", book="FX", pair="EURUSD", side="buy", notional=1_000_000, strike=1.18,
                     maturity="2026-06-30")
BOND = instrument("BND", "bond", book="RATES", currency="EUR", notional=2_000_000, coupon=0.03,
                  issueDate="2025-06-30", maturity="2028-06-30", frequency="Annual", dayCount="30/360",
                  calendar="NullCalendar", settlementDays=0)


def call(vol: float) -> float:
    d1 = (math.log(SPOT / 100) + (RATE + vol * vol / 2)) / vol
    return SPOT * NormalDist().cdf(d1) - 100 * math.exp(-RATE) * NormalDist().cdf(d1 - vol)


def risk_of(instrument_xml: str) -> tuple[bytes, bytes]:
    priced = value(task(instrument_xml, MARKET))
    amount, currency = figure(priced, "price/amount"), etree.fromstring(priced).findtext(".//analytics/price/currency")
    base = f"<base><price><amount>{amount:.2f}</amount><currency>{currency}</currency></price></base>"
    return priced, value(task(instrument_xml, MARKET, calculator="risk", extra=base))


def test_vega_is_the_central_difference_of_one_vol_point() -> None:
    _, risk = risk_of(OPTION)
    expected = QUANTITY * (call(VOL + 0.01) - call(VOL - 0.01)) / 2
    assert figure(risk, "vega") == pytest.approx(expected, rel=1e-9)


def test_an_fx_forward_has_buckets_on_both_curves_and_no_vega() -> None:
    _, risk = risk_of(FORWARD)
    buckets = {(b.get("curve"), b.get("tenor")) for b in etree.fromstring(risk).iter("bucket")}
    assert buckets == {("EUR", "1Y"), ("EUR", "10Y"), ("USD", "1Y"), ("USD", "10Y")}
    assert etree.fromstring(risk).find(".//analytics/vega") is None


def report(*results: bytes) -> bytes:
    groups = "".join(etree.tostring(etree.fromstring(r).find("project/group")).decode() for r in results)
    return (f'<vnml><project><group name="report"><valuation name="totals"><calculator name="aggregate"/>{groups}'
            f"<analytics><evaluation><date>2025-06-30</date></evaluation></analytics></valuation></group></project>"
            f"</vnml>").encode()


def test_totals_by_currency_and_book_are_the_sums_of_the_results() -> None:
    results = [r for instrument_xml in (OPTION, FORWARD, BOND) for r in risk_of(instrument_xml)]
    totals = etree.fromstring(value(report(*results))).find(".//analytics")
    assert totals is not None
    usd = totals.find("totals[@by='currency']/total[@currency='USD']")
    assert usd is not None and usd.findtext("instruments") == "2"
    expected_value = sum(figure(results[i], "price/amount") for i in (0, 2))
    assert float(usd.findtext("value") or "nan") == pytest.approx(expected_value, abs=0.005)
    usd_dv01 = figure(results[1], "dv01") + figure(results[3], "dv01")
    assert float(usd.findtext("dv01") or "nan") == pytest.approx(usd_dv01, abs=0.005)
    assert float(usd.findtext("vega") or "nan") == pytest.approx(figure(results[1], "vega"), abs=0.005)
    books = {(t.get("book"), t.get("currency")) for t in totals.iterfind("totals[@by='book']/total")}
    assert books == {("EQ", "USD"), ("FX", "USD"), ("RATES", "EUR")}
    # The copied groups are inputs; the result keeps only the totals.
    assert etree.fromstring(value(report(*results))).find(".//valuation/group") is None
