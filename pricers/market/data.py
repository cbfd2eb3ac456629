"""One task's market: the `<market>` element, read lazily and strictly, under optional risk shifts.

Its children are `curve` (named by currency), `fxSpot` (named by pair) and `equity` (named by ticker).
Only what a product asks for is built; each part is read strictly when it is built.
"""

from __future__ import annotations

from dataclasses import dataclass

import QuantLib as ql

from pricers.inputs import Fields, element_children
from pricers.market import fx
from pricers.market.curves import Curve, build_curve
from pricers.market.shifts import NONE, Shifts
from pricers.market.vols import Vols, build_vols

KINDS = ("curve", "fxSpot", "equity")


@dataclass(frozen=True)
class Equity:
    name: str
    currency: str
    spot: float
    dividends: ql.YieldTermStructureHandle
    vols: Vols


class Market:
    def __init__(self, fields: Fields, today: ql.Date, shifts: Shifts = NONE) -> None:
        self.fields = fields
        self.today = today
        self.shifts = shifts
        self._curves: dict[str, Curve] = {}
        self._unshifted: dict[str, Curve] = {}  # the base market's curves, reused where no quote moves
        self.equities_used = False
        for child in element_children(fields.element):
            if child.tag not in KINDS:
                raise fields.fail(child.tag, f"unknown market data; expected one of {', '.join(KINDS)}")
        for kind in KINDS:
            fields.all(kind)

    def shifted(self, shifts: Shifts) -> Market:
        market = Market(Fields(self.fields.element, self.fields.where, self.fields.path), self.today, shifts)
        market._unshifted = self._curves
        return market

    def _named(self, kind: str, name: str, asked_by: Fields, field: str) -> Fields:
        found = [node for node in self.fields.all(kind) if node.get("name") == name]
        if len(found) != 1:
            problem = "no" if not found else f"{len(found)}"
            raise asked_by.fail(field, f"the market has {problem} {kind} named {name!r}")
        return Fields(found[0], self.fields.where, f"{self.fields.path}/{kind}[@name='{name}']")

    def curve(self, currency: str, asked_by: Fields, field: str = "currency") -> Curve:
        if currency not in self._curves and currency in self._unshifted and not self.shifts.touches(currency):
            self._curves[currency] = self._unshifted[currency]
        if currency not in self._curves:
            fields = self._named("curve", currency, asked_by, field)
            self._curves[currency] = build_curve(fields, currency, self.today, self.shifts)
        return self._curves[currency]

    def fx_spot(self, pair: str, asked_by: Fields, field: str) -> float:
        return fx.fx_spot(self.fields, pair, asked_by, field)

    def equity(self, name: str, asked_by: Fields, field: str = "underlying") -> Equity:
        fields = self._named("equity", name, asked_by, field)
        self.equities_used = True
        currency = fields.text("currency")
        spot = fields.number("spot", positive=True)
        dividend_yield = fields.number("dividendYield")
        vols = build_vols(fields.fields("volatility"), self.today, self.shifts.vol)
        fields.finish()
        dividends = ql.YieldTermStructureHandle(ql.FlatForward(self.today, dividend_yield, ql.Actual365Fixed()))
        return Equity(name, currency, spot, dividends, vols)

    def curves_used(self) -> dict[str, Curve]:
        return dict(self._curves)
