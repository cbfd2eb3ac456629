"""Fixed-rate bullet bonds discounted on the curve of their currency.

Figures: cleanPrice, dirtyPrice, accruedInterest (per 100 face), yield (compounded at the coupon
frequency in the bond's day count, from the clean price), modifiedDuration, convexity (at that yield);
the value is notional x NPV / 100 on the valuation date.
"""

from __future__ import annotations

import QuantLib as ql

from pricers import conventions
from pricers.inputs import Fields
from pricers.market.data import Market
from pricers.products.base import Priced, future_date


def price_bond(instrument: Fields, market: Market) -> Priced:
    currency = instrument.text("currency")
    notional = instrument.number("notional", positive=True)
    coupon = instrument.number("coupon")
    issue = conventions.to_ql_date(instrument.date("issueDate"))
    maturity = future_date(instrument, market, "maturity")
    if issue >= maturity:
        raise instrument.fail("issueDate", "must be before the maturity")
    frequency = conventions.frequency(instrument)
    day_count = conventions.day_count(instrument)
    calendar = conventions.calendar(instrument)
    settlement_days = instrument.integer("settlementDays")
    curve = market.curve(currency, instrument)
    instrument.finish()
    schedule = ql.Schedule(issue, maturity, ql.Period(frequency), calendar, ql.Unadjusted, ql.Unadjusted,
                           ql.DateGeneration.Backward, False)
    bond = ql.FixedRateBond(settlement_days, 100.0, schedule, [coupon], day_count, ql.Following)
    bond.setPricingEngine(ql.DiscountingBondEngine(curve.handle))
    clean = bond.cleanPrice()
    bond_yield = bond.bondYield(ql.BondPrice(clean, ql.BondPrice.Clean), day_count, ql.Compounded, frequency)
    rate = ql.InterestRate(bond_yield, day_count, ql.Compounded, frequency)
    return Priced(currency, notional * bond.NPV() / 100.0, {
        "cleanPrice": clean,
        "dirtyPrice": bond.dirtyPrice(),
        "accruedInterest": bond.accruedAmount(),
        "yield": bond_yield,
        "modifiedDuration": ql.BondFunctions.duration(bond, rate, ql.Duration.Modified),
        "convexity": ql.BondFunctions.convexity(bond, rate),
    })
