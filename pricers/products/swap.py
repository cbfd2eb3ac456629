"""Vanilla fixed-for-floating swaps on one curve (discounting and forecasting), with that curve's
swap conventions (fixed frequency and day count, floating tenor).

Figures: fairRate, pv01 (value change for +1bp on the fixed rate, signed), fixedLegValue,
floatingLegValue; the value is the swap's NPV to its holder (payer: pays fixed).
"""

from __future__ import annotations

import QuantLib as ql

from pricers import conventions
from pricers.inputs import Fields
from pricers.market.data import Market
from pricers.products.base import Priced, future_date

SIDES = {"payer": ql.VanillaSwap.Payer, "receiver": ql.VanillaSwap.Receiver}


def price_swap(instrument: Fields, market: Market) -> Priced:
    currency = instrument.text("currency")
    notional = instrument.number("notional", positive=True)
    side = SIDES[instrument.choice("side", tuple(SIDES))]
    fixed_rate = instrument.number("fixedRate")
    start = conventions.to_ql_date(instrument.date("startDate"))
    maturity = future_date(instrument, market, "maturity")
    curve = market.curve(currency, instrument)
    instrument.finish()
    if curve.swaps is None:
        raise instrument.fail("currency", f"the market's curve {currency} has no swaps conventions")
    spot = curve.calendar.advance(market.today, curve.settlement_days, ql.Days)
    if start < spot:
        raise instrument.fail("startDate", f"{conventions.to_iso(start)} is before the spot date "
                              f"{conventions.to_iso(spot)}; a started swap needs fixings the market does not hold")
    if start >= maturity:
        raise instrument.fail("startDate", "must be before the maturity")
    index = curve.index()
    fixed = ql.Schedule(start, maturity, ql.Period(curve.swaps.fixed_frequency), curve.calendar,
                        ql.ModifiedFollowing, ql.ModifiedFollowing, ql.DateGeneration.Forward, False)
    floating = ql.Schedule(start, maturity, curve.swaps.floating_tenor, curve.calendar,
                           ql.ModifiedFollowing, ql.ModifiedFollowing, ql.DateGeneration.Forward, False)
    swap = ql.VanillaSwap(side, notional, fixed, fixed_rate, curve.swaps.fixed_day_count, floating, index, 0.0,
                          index.dayCounter())
    swap.setPricingEngine(ql.DiscountingSwapEngine(curve.handle))
    return Priced(currency, swap.NPV(), {
        "fairRate": swap.fairRate(),
        "pv01": swap.fixedLegBPS(),
        "fixedLegValue": swap.fixedLegNPV(),
        "floatingLegValue": swap.floatingLegNPV(),
    })
