"""FX spots: `<fxSpot name="EURUSD">1.0850</fxSpot>` is the USD price of one EUR on the valuation date."""

from __future__ import annotations

import re

from pricers.inputs import Fields, element_children, parse_number

_PAIR = re.compile(r"^[A-Z]{3}[A-Z]{3}$")


def fx_spot(market: Fields, pair: str, asked_by: Fields, field: str) -> float:
    """The spot of `pair` (quoted directly, or as the inverse of the reversed pair)."""
    if not _PAIR.match(pair):
        raise asked_by.fail(field, f"{pair!r} is not a currency pair like EURUSD")
    for node in market.all("fxSpot"):
        name = node.get("name") or ""
        if name in (pair, pair[3:] + pair[:3]):
            if element_children(node):
                raise market.fail(f"fxSpot[@name='{name}']", "must be a number, not elements")
            rate = parse_number((node.text or "").strip(), market.failing(f"fxSpot[@name='{name}']"), positive=True)
            return rate if name == pair else 1.0 / rate
    raise asked_by.fail(field, f"the market has no fxSpot for {pair}")
