"""FX forwards: buy (or sell) `notional` of the pair's base currency at `strike` on `maturity`.

The forward rate is spot x DF(base) / DF(quote) on the two currencies' curves; the value, in the
quote currency, is notional x (forward - strike) x DF(quote), negated for a sale. Figures:
forwardRate, spot, baseDiscount, quoteDiscount.
"""

from __future__ import annotations

from pricers.inputs import Fields
from pricers.market.data import Market
from pricers.products.base import Priced, future_date

SIDES = {"buy": 1.0, "sell": -1.0}


def price_fx_forward(instrument: Fields, market: Market) -> Priced:
    pair = instrument.text("pair")
    side = SIDES[instrument.choice("side", tuple(SIDES))]
    notional = instrument.number("notional", positive=True)
    strike = instrument.number("strike", positive=True)
    maturity = future_date(instrument, market, "maturity")
    spot = market.fx_spot(pair, instrument, "pair")
    base = market.curve(pair[:3], instrument, "pair").handle.discount(maturity)
    quote = market.curve(pair[3:], instrument, "pair").handle.discount(maturity)
    instrument.finish()
    forward = spot * base / quote
    return Priced(pair[3:], side * notional * (forward - strike) * quote, {
        "forwardRate": forward,
        "spot": spot,
        "baseDiscount": base,
        "quoteDiscount": quote,
    })
