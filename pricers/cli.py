"""Console entry points: `vn-price` values any product; `vn-price-<product>` only its own product
(price and risk); `vn-price-aggregate` only totals."""

from __future__ import annotations

from pricers.script import main
from pricers.valuation import value, value_only


def _only(product: str) -> int:
    return main(lambda task_xml: value_only(task_xml, product))


def price_any() -> int:
    return main(value)


def price_bond() -> int:
    return _only("bond")


def price_swap() -> int:
    return _only("swap")


def price_fx_forward() -> int:
    return _only("fxForward")


def price_european() -> int:
    return _only("europeanOption")


def price_american() -> int:
    return _only("americanOption")


def price_aggregate() -> int:
    return main(lambda task_xml: value_only(task_xml, "aggregate"))
