"""What a product pricer is: instrument fields and a market in, a value in a currency and figures out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import QuantLib as ql

from pricers.conventions import to_ql_date
from pricers.inputs import Fields
from pricers.market.data import Market


@dataclass
class Priced:
    """`value` is the position's present value in `currency` (written to analytics/price/amount);
    `figures` are the product's other outputs, in order, each written as analytics/<name>."""

    currency: str
    value: float
    figures: dict[str, float] = field(default_factory=dict)


Pricer = Callable[[Fields, Market], Priced]


def future_date(instrument: Fields, market: Market, name: str) -> ql.Date:
    """A date field that must lie after the valuation date (a maturity, an expiry)."""
    date = to_ql_date(instrument.date(name))
    if date <= market.today:
        raise instrument.fail(name, f"{instrument.text(name)} is not after the valuation date")
    return date
