"""Black volatilities: one flat value, or a strike x expiry surface interpolated in variance.

    <volatility><dayCount>Actual/365F</dayCount><calendar>UnitedStates</calendar>
      <flat>0.20</flat>
    or
      <surface><strikes>90 100 110</strikes>
               <expiry tenor="6M">0.23 0.21 0.20</expiry> ... </surface>
    </volatility>

Strikes outside the surface take the nearest strike's vol; expiries after the last one are refused.
"""

from __future__ import annotations

from dataclasses import dataclass

import QuantLib as ql

from pricers import conventions
from pricers.inputs import Fields, element_children, parse_number


@dataclass(frozen=True)
class Vols:
    handle: ql.BlackVolTermStructureHandle
    last_expiry: ql.Date | None  # None: flat, any expiry


def build_vols(fields: Fields, today: ql.Date, shift: float) -> Vols:
    day_count = conventions.day_count(fields)
    calendar = conventions.calendar(fields)
    if fields.has("flat") == fields.has("surface"):
        raise fields.fail("flat", "give exactly one of flat and surface")
    if fields.has("flat"):
        vol = fields.number("flat", positive=True) + shift
        fields.finish()
        return Vols(ql.BlackVolTermStructureHandle(ql.BlackConstantVol(today, calendar, vol, day_count)), None)
    surface = fields.fields("surface")
    strikes = _numbers(surface, "strikes", surface.text("strikes"))
    if sorted(set(strikes)) != strikes:
        raise surface.fail("strikes", "must be distinct and increasing")
    dates: list[ql.Date] = []
    rows: list[list[float]] = []
    for node in surface.all("expiry"):
        label = (node.get("tenor") or "").strip()
        field = f"expiry[@tenor='{label}']"
        date = calendar.advance(today, conventions.tenor(label, surface, "expiry/@tenor"))
        if dates and date <= dates[-1]:
            raise surface.fail(field, "expiries must be increasing")
        if element_children(node):
            raise surface.fail(field, "must be numbers, not elements")
        row = _numbers(surface, field, (node.text or "").strip())
        if len(row) != len(strikes) or min(row) <= 0:
            raise surface.fail(field, f"needs {len(strikes)} positive vols, one per strike")
        dates.append(date)
        rows.append([vol + shift for vol in row])
    if len(dates) < 2:
        raise surface.fail("expiry", "give at least two expiries")
    surface.finish()
    fields.finish()
    matrix = ql.Matrix(len(strikes), len(dates))
    for column, row in enumerate(rows):
        for line, vol in enumerate(row):
            matrix[line][column] = vol
    black = ql.BlackVarianceSurface(today, calendar, dates, strikes, matrix, day_count)
    return Vols(ql.BlackVolTermStructureHandle(black), dates[-1])


def _numbers(fields: Fields, name: str, text: str) -> list[float]:
    values = [parse_number(part, lambda message: fields.fail(name, message)) for part in text.split()]
    if not values:
        raise fields.fail(name, "is empty")
    return values
