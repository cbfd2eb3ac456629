"""Yield curves: bootstrapped from deposit and swap quotes, or interpolated from zero rates.

    <curve name="USD">                         the curve of that currency
      <dayCount>Actual/360</dayCount> <calendar>UnitedStates</calendar> <settlementDays>2</settlementDays>
      <deposits><quote tenor="3M">0.0433</quote>...</deposits>
      <swapConventions><fixedFrequency>Annual</fixedFrequency><fixedDayCount>Actual/360</fixedDayCount>
             <floatingTenor>3M</floatingTenor></swapConventions>
      <swaps><quote tenor="2Y">0.0410</quote>...</swaps>
    </curve>
or  <curve name="GBP"> ...dayCount, calendar, settlementDays, optional swapConventions...
      <zeros><compounding>Continuous</compounding><quote tenor="1Y">0.0010</quote>...</zeros></curve>

swapConventions are those of the currency's vanilla swaps (pricers/products/swap.py) and of its swap quotes.
"""

from __future__ import annotations

from dataclasses import dataclass

import QuantLib as ql

from pricers import conventions
from pricers.errors import PricingError
from pricers.inputs import Fields, element_children, parse_number
from pricers.market.shifts import Shifts


@dataclass(frozen=True)
class SwapConventions:
    fixed_frequency: int
    fixed_day_count: ql.DayCounter
    floating_tenor: ql.Period


@dataclass(frozen=True)
class Curve:
    name: str
    handle: ql.YieldTermStructureHandle
    day_count: ql.DayCounter
    calendar: ql.Calendar
    settlement_days: int
    swaps: SwapConventions | None
    pillars: tuple[str, ...]

    def index(self) -> ql.IborIndex:
        """The floating index of this curve's swaps, forecast on the curve itself (one-curve set-up)."""
        if self.swaps is None:
            raise PricingError(f"curve {self.name}", "field swapConventions is missing")
        return ql.IborIndex(f"{self.name}-{self.swaps.floating_tenor}", self.swaps.floating_tenor,
                            self.settlement_days, ql.Currency(), self.calendar, ql.ModifiedFollowing, False,
                            self.day_count, self.handle)


def build_curve(fields: Fields, name: str, today: ql.Date, shifts: Shifts) -> Curve:
    day_count = conventions.day_count(fields)
    calendar = conventions.calendar(fields)
    settlement_days = fields.integer("settlementDays")
    swap_conventions = _swap_conventions(fields) if fields.has("swapConventions") else None
    if fields.has("zeros") and (fields.has("deposits") or fields.has("swaps")):
        raise fields.fail("zeros", "a curve is given either as zeros or as deposits and swaps, not both")
    if fields.has("zeros"):
        zeros = fields.fields("zeros")
        compounding, frequency = conventions.compounding(zeros)
        quotes = _quotes(zeros, name, shifts)
        zeros.finish()
        dates = [today] + [calendar.advance(today, period) for _, period, _ in quotes]
        rates = [quotes[0][2]] + [rate for _, _, rate in quotes]
        curve = ql.ZeroCurve(dates, rates, day_count, calendar, ql.Linear(), compounding, frequency)
        fields.finish()
        return _made(name, curve, day_count, calendar, settlement_days, swap_conventions, quotes)
    deposits = fields.fields("deposits")
    deposit_quotes = _quotes(deposits, name, shifts)
    deposits.finish()
    helpers: list[ql.RateHelper] = [
        ql.DepositRateHelper(ql.QuoteHandle(ql.SimpleQuote(rate)), period, settlement_days, calendar,
                             ql.ModifiedFollowing, False, day_count)
        for _, period, rate in deposit_quotes]
    swap_quotes: list[tuple[str, ql.Period, float]] = []
    if fields.has("swaps"):
        if swap_conventions is None:
            raise fields.fail("swapConventions", "is missing; swap quotes need their conventions")
        swaps = fields.fields("swaps")
        swap_quotes = _quotes(swaps, name, shifts)
        swaps.finish()
        index = ql.IborIndex(f"{name}-float", swap_conventions.floating_tenor, settlement_days, ql.Currency(),
                             calendar, ql.ModifiedFollowing, False, day_count)
        helpers += [ql.SwapRateHelper(ql.QuoteHandle(ql.SimpleQuote(rate)), period, calendar,
                                      swap_conventions.fixed_frequency, ql.ModifiedFollowing,
                                      swap_conventions.fixed_day_count, index)
                    for _, period, rate in swap_quotes]
    fields.finish()
    if {label for label, _, _ in deposit_quotes} & {label for label, _, _ in swap_quotes}:
        raise fields.fail("swaps", "quotes a tenor the deposits quote too")
    curve = ql.PiecewiseLogLinearDiscount(today, helpers, day_count)
    return _made(name, curve, day_count, calendar, settlement_days, swap_conventions, deposit_quotes + swap_quotes)


def _swap_conventions(fields: Fields) -> SwapConventions:
    conventions_fields = fields.fields("swapConventions")
    found = SwapConventions(conventions.frequency(conventions_fields, "fixedFrequency"),
                            conventions.day_count(conventions_fields, "fixedDayCount"),
                            conventions.tenor(conventions_fields.text("floatingTenor"), conventions_fields,
                                              "floatingTenor"))
    conventions_fields.finish()
    return found


def _made(name: str, curve: ql.YieldTermStructure, day_count: ql.DayCounter, calendar: ql.Calendar,
          settlement_days: int, swaps: SwapConventions | None, quotes: list[tuple[str, ql.Period, float]]) -> Curve:
    curve.enableExtrapolation()
    return Curve(name, ql.YieldTermStructureHandle(curve), day_count, calendar, settlement_days, swaps,
                 tuple(label for label, _, _ in quotes))


def _quotes(fields: Fields, curve: str, shifts: Shifts) -> list[tuple[str, ql.Period, float]]:
    """(tenor label, period, shifted rate) of every `<quote tenor="...">`, in order, tenors unique."""
    quotes: list[tuple[str, ql.Period, float]] = []
    for node in fields.all("quote"):
        label = (node.get("tenor") or "").strip()
        period = conventions.tenor(label, fields, "quote/@tenor")
        if element_children(node):
            raise fields.fail(f"quote[@tenor='{label}']", "must be a number, not elements")
        rate = parse_number((node.text or "").strip(), fields.failing(f"quote[@tenor='{label}']"))
        if any(label == seen for seen, _, _ in quotes):
            raise fields.fail(f"quote[@tenor='{label}']", "appears twice")
        quotes.append((label, period, rate + shifts.rate(curve, label)))
    if not quotes:
        raise fields.fail("quote", "is missing; give at least one quote")
    return quotes
