"""Risk by bump and reprice, from an earlier group's result and the market.

The instrument is priced again on the market and must match the base price the earlier group wrote
(`<base><price><amount/><currency/></price></base>`): a different market would make the risk belong to
another valuation. Then, with central differences of 1bp on curve quotes and 1 vol point:
  dv01            (value with every quote of the curves used -1bp  -  value with +1bp) / 2
  bucketedDv01    the same per curve quote: <bucket curve="USD" tenor="5Y">
  vega            (value with vols +0.01  -  value with vols -0.01) / 2, for products with vols
"""

from __future__ import annotations

import math

from lxml import etree

from pricers.errors import PricingError
from pricers.inputs import Fields
from pricers.instrument import describe, price_instrument
from pricers.market.data import Market
from pricers.market.shifts import Shifts
from pricers.task import Figure, format_figure

ONE_BP = 1e-4
ONE_VOL_POINT = 0.01
# The base price was written with 2 decimals: it matches a price to half a cent (plus rounding of large sums).
BASE_TOLERANCE = 0.005
BASE_RELATIVE_TOLERANCE = 1e-9


def bump_and_reprice(instrument: etree._Element, market: Market, base: Fields, only: str | None
                     ) -> tuple[list[Figure], etree._Element]:
    _, where = describe(instrument)
    base.where = where
    price = base.fields("price")
    base_amount = price.number("amount")
    base_currency = price.text("currency")
    price.finish()
    base.finish()
    priced = price_instrument(instrument, market, only)
    if priced.currency != base_currency:
        raise PricingError(where, f"field base/price/currency: {base_currency} but the instrument is valued "
                           f"in {priced.currency}")
    if abs(priced.value - base_amount) > BASE_TOLERANCE + BASE_RELATIVE_TOLERANCE * abs(priced.value):
        raise PricingError(where, f"field base/price/amount: {base_amount:.2f} differs from the price on this "
                           f"market ({priced.value:.2f}); the earlier group was valued on another market")
    curves = market.curves_used()
    uses_vols = market.equities_used

    def value(shifts: Shifts) -> float:
        return price_instrument(instrument, market.shifted(shifts), only).value

    figures: list[Figure] = [("price/amount", base_amount), ("price/currency", base_currency),
                             ("dv01", (value(Shifts(parallel=-ONE_BP)) - value(Shifts(parallel=ONE_BP))) / 2)]
    buckets = etree.Element("bucketedDv01")
    for name, curve in sorted(curves.items()):
        for tenor in curve.pillars:
            down = value(Shifts(buckets={(name, tenor): -ONE_BP}))
            up = value(Shifts(buckets={(name, tenor): ONE_BP}))
            if not math.isfinite(down - up):
                raise PricingError(where, f"bucketedDv01 {name} {tenor} is not finite; refused")
            bucket = etree.SubElement(buckets, "bucket", curve=name, tenor=tenor)
            bucket.text = format_figure("dv01", (down - up) / 2)
    if uses_vols:
        figures.append(("vega", (value(Shifts(vol=ONE_VOL_POINT)) - value(Shifts(vol=-ONE_VOL_POINT))) / 2))
    return figures, buckets
