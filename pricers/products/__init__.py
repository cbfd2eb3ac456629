"""The products a pricer values, by the name an instrument gives in its `<product>` field."""

from __future__ import annotations

from pricers.products.base import Pricer
from pricers.products.bond import price_bond
from pricers.products.fxforward import price_fx_forward
from pricers.products.options import price_american, price_european
from pricers.products.swap import price_swap

PRODUCTS: dict[str, Pricer] = {
    "bond": price_bond,
    "swap": price_swap,
    "fxForward": price_fx_forward,
    "europeanOption": price_european,
    "americanOption": price_american,
}
