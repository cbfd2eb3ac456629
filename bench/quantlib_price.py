"""The script-quantlib benchmark's pricer: a fixed-rate bond or a European option on QuantLib.

A small stand-in for a real pricer library, sized like one: each task bootstraps its discount curve
from the market's deposit and swap quotes, then prices its instrument with the usual risk figures.

    bond:   clean and dirty price, yield, modified duration, convexity
    option: NPV (Black-Scholes), delta, gamma, vega, theta, rho

`value(task_xml)` is the in-process / process-pool entry point (VNAS_EXECUTOR=python:...:value);
run as a script (`python -m bench.quantlib_price`) it is a valuation script, one-shot or persistent,
through vncommon.scripthost.
"""

from __future__ import annotations

from collections.abc import Mapping

import QuantLib as ql
from lxml import etree

from vncommon import scripthost

CALENDAR = ql.TARGET()
DAY_COUNT = ql.Actual365Fixed()
SETTLEMENT_DAYS = 2


def _text(node: etree._Element, path: str) -> str:
    found = node.findtext(path)
    if found is None or not found.strip():
        raise ValueError(f"missing <{path}> in {node.tag} {node.get('name', '')!r}".rstrip())
    return found.strip()


def _number(node: etree._Element, path: str) -> float:
    return float(_text(node, path))


def _date(text: str) -> ql.Date:
    return ql.DateParser.parseISO(text)


def discount_curve(curve: etree._Element) -> ql.YieldTermStructureHandle:
    """Deposits up to a year, then par swaps (annual fixed, 6M Euribor-style float), log-cubic discount."""
    helpers = []
    for deposit in curve.iterfind("deposit"):
        quote = ql.QuoteHandle(ql.SimpleQuote(float(deposit.text or "")))
        helpers.append(ql.DepositRateHelper(quote, ql.Period(deposit.get("tenor")), SETTLEMENT_DAYS, CALENDAR,
                                            ql.ModifiedFollowing, False, DAY_COUNT))
    index = ql.Euribor6M()
    for swap in curve.iterfind("swap"):
        quote = ql.QuoteHandle(ql.SimpleQuote(float(swap.text or "")))
        helpers.append(ql.SwapRateHelper(quote, ql.Period(swap.get("tenor")), CALENDAR, ql.Annual,
                                         ql.Unadjusted, ql.Thirty360(ql.Thirty360.BondBasis), index))
    if not helpers:
        raise ValueError("the market's <curve> has no deposit or swap quotes")
    built = ql.PiecewiseLogCubicDiscount(0, CALENDAR, helpers, DAY_COUNT)
    built.enableExtrapolation()
    return ql.YieldTermStructureHandle(built)


def price_bond(instrument: etree._Element, today: ql.Date, curve: ql.YieldTermStructureHandle) -> dict[str, float]:
    coupon = _number(instrument, "coupon")
    years = int(_number(instrument, "maturityYears"))
    frequency = int(_number(instrument, "frequency"))
    face = _number(instrument, "face")
    issue = CALENDAR.advance(today, SETTLEMENT_DAYS, ql.Days)
    schedule = ql.Schedule(issue, issue + ql.Period(years, ql.Years), ql.Period(frequency), CALENDAR,
                           ql.Unadjusted, ql.Unadjusted, ql.DateGeneration.Backward, False)
    bond = ql.FixedRateBond(SETTLEMENT_DAYS, face, schedule, [coupon], ql.ActualActual(ql.ActualActual.Bond))
    bond.setPricingEngine(ql.DiscountingBondEngine(curve))
    day_count = ql.ActualActual(ql.ActualActual.Bond)
    yield_rate = bond.bondYield(day_count, ql.Compounded, frequency)
    interest = ql.InterestRate(yield_rate, day_count, ql.Compounded, frequency)
    return {"price": bond.dirtyPrice() * face / 100, "cleanPrice": bond.cleanPrice(), "dirtyPrice": bond.dirtyPrice(),
            "yield": yield_rate,
            "modifiedDuration": ql.BondFunctions.duration(bond, interest, ql.Duration.Modified),
            "convexity": ql.BondFunctions.convexity(bond, interest)}


def price_option(instrument: etree._Element, market: etree._Element, today: ql.Date,
                 curve: ql.YieldTermStructureHandle) -> dict[str, float]:
    kind = ql.Option.Call if _text(instrument, "optionType") == "call" else ql.Option.Put
    expiry = today + ql.Period(round(_number(instrument, "expiryYears") * 12), ql.Months)
    option = ql.VanillaOption(ql.PlainVanillaPayoff(kind, _number(instrument, "strike")), ql.EuropeanExercise(expiry))
    equity = market.find("equity")
    if equity is None:
        raise ValueError("the market has no <equity> for the option")
    spot = ql.QuoteHandle(ql.SimpleQuote(_number(equity, "spot")))
    dividends = ql.YieldTermStructureHandle(ql.FlatForward(today, _number(equity, "dividendYield"), DAY_COUNT))
    volatility = ql.BlackVolTermStructureHandle(
        ql.BlackConstantVol(today, CALENDAR, _number(equity, "volatility"), DAY_COUNT))
    option.setPricingEngine(ql.AnalyticEuropeanEngine(ql.BlackScholesMertonProcess(spot, dividends, curve, volatility)))
    notional = _number(instrument, "notional")
    return {"price": option.NPV() * notional, "npv": option.NPV(), "delta": option.delta(), "gamma": option.gamma(),
            "vega": option.vega(), "theta": option.theta(), "rho": option.rho()}


def value(task_xml: bytes) -> bytes:
    """The task document with its valuation's analytics filled in."""
    root = etree.fromstring(task_xml)
    valuation = root.find("project/group/valuation")
    if valuation is None:
        raise ValueError("the task has no project/group/valuation")
    instrument, market = valuation.find("instrument"), valuation.find("market")
    if instrument is None or market is None:
        raise ValueError(f"valuation {valuation.get('name')!r} needs an <instrument> and a <market>")
    today = _date(_text(market, "valuationDate"))
    ql.Settings.instance().evaluationDate = today
    curve_node = market.find("curve")
    if curve_node is None:
        raise ValueError("the market has no <curve>")
    curve = discount_curve(curve_node)
    kind = instrument.get("type")
    if kind == "bond":
        figures = price_bond(instrument, today, curve)
    elif kind == "option":
        figures = price_option(instrument, market, today, curve)
    else:
        raise ValueError(f"instrument {instrument.get('name')!r} has unknown type {kind!r}")
    analytics = valuation.find("analytics")
    if analytics is None:
        analytics = etree.SubElement(valuation, "analytics")
    for old in list(analytics):
        analytics.remove(old)
    price = etree.SubElement(etree.SubElement(analytics, "price"), "amount")
    price.text = f"{figures.pop('price'):.2f}"
    for name, figure in figures.items():
        etree.SubElement(analytics, name).text = repr(figure)
    return etree.tostring(root)


def handle(task_xml: bytes, env: Mapping[str, str]) -> bytes:
    return value(task_xml)


if __name__ == "__main__":
    scripthost.main(handle)
