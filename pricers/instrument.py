"""One instrument priced on one market: the product chosen by its `<product>` field.

Every instrument names itself (`name` attribute) and gives `product` and `book`; the rest are the
product's own fields (docs/pricers.md). QuantLib's errors become PricingErrors naming the instrument.
"""

from __future__ import annotations

import math

from lxml import etree

from pricers.errors import PricingError
from pricers.inputs import Fields
from pricers.market.data import Market
from pricers.products import PRODUCTS
from pricers.products.base import Priced


def describe(instrument: etree._Element) -> tuple[str, str]:
    """(product, "product NAME") of an instrument element, checking both are given and known."""
    name = (instrument.get("name") or "").strip()
    if not name:
        raise PricingError("instrument", "field instrument/@name is missing")
    fields = Fields(instrument, f"instrument {name}", "instrument")
    product = fields.text("product")
    if product not in PRODUCTS:
        raise fields.fail("product", f"unknown product {product!r}; known: {', '.join(PRODUCTS)}")
    return product, f"{product} {name}"


def book_of(instrument: etree._Element) -> str:
    _, where = describe(instrument)
    return Fields(instrument, where, "instrument").text("book")


def price_instrument(instrument: etree._Element, market: Market, only: str | None = None) -> Priced:
    """Price `instrument` on `market`; `only` restricts the product (a per-product entry point)."""
    product, where = describe(instrument)
    if only is not None and product != only:
        raise PricingError(where, f"field instrument/product: this pricer values only {only!r}")
    fields = Fields(instrument, where, "instrument")
    fields.text("product")
    fields.text("book")
    market.fields.where = where
    try:
        priced = PRODUCTS[product](fields, market)
    except RuntimeError as exc:  # QuantLib reports its own failures as RuntimeError
        raise PricingError(where, f"QuantLib: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    for name, value in [("price/amount", priced.value), *priced.figures.items()]:
        if not math.isfinite(value):
            raise PricingError(where, f"{name} is {value}; a non-finite result is refused")
    return priced
