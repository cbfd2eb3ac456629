"""`value(task_xml) -> result_xml`: the pricer's one entry, usable as VNAS_EXECUTOR=python:pricers:value.

The valuation's `<calculator name="price|risk|aggregate">` chooses what is done; for price and risk the
instrument's `<product>` chooses the product. The result is the task document with analytics filled in
and the inputs copied from elsewhere removed: the market (reference data the request holds) and, from
totals, the earlier groups (the response holds them). Results stay small.
"""

from __future__ import annotations

from pricers.calculators import CALCULATORS
from pricers.task import calculator_name, load, valuation_fields
from vncommon.xmlsafe import serialize


def value(task_xml: bytes) -> bytes:
    """Value any product; raises PricingError naming the product, the instrument and the field."""
    return value_only(task_xml, None)


def value_only(task_xml: bytes, product: str | None) -> bytes:
    """Value the task; with `product`, refuse instruments of any other product."""
    root, valuation = load(task_xml)
    fields = valuation_fields(valuation)
    name = calculator_name(fields)
    if name not in CALCULATORS:
        raise fields.fail("calculator/@name", f"unknown calculator {name!r}; known: {', '.join(CALCULATORS)}")
    CALCULATORS[name](fields, product)
    fields.finish()
    for copied in valuation.findall("market") + valuation.findall("group"):
        valuation.remove(copied)
    return serialize(root)
