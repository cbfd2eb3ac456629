"""The task document around a valuation: finding it, its calculator and date, writing its analytics.

A task is `vnml/project/group/valuation` (or a bare `<valuation>`). The valuation's `<calculator
name="...">` says what to do (price, risk, aggregate); `analytics/evaluation/date` is the valuation
date. Results go into `analytics`, which keeps its `evaluation` and gets every figure as a child.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable

from lxml import etree

from pricers.errors import PricingError
from pricers.inputs import Fields, element_children
from vncommon import vnml
from vncommon.errors import MalformedXml
from vncommon.xmlsafe import parse_xml

Figure = tuple[str, float | str]  # a number, or a text such as a currency


def load(task_xml: bytes) -> tuple[etree._Element, etree._Element]:
    """The parsed task document and its valuation."""
    try:
        root = parse_xml(task_xml, what="task XML")
    except MalformedXml as exc:
        raise PricingError("task", exc.message) from None
    if vnml.is_named(root, vnml.VALUATION):
        return root, root
    for group in vnml.groups_of(root):
        for valuation in vnml.valuations_of(group):
            return root, valuation
    raise PricingError("task", "the task XML has no project/group/valuation")


def valuation_fields(valuation: etree._Element) -> Fields:
    fields = Fields(valuation, f"valuation {valuation.get('name') or '?'}", "valuation")
    fields.all("vndb")  # the mesh's own marker, not an input
    return fields


def calculator_name(fields: Fields) -> str:
    node = fields.child("calculator")
    name = (node.get("name") or "").strip()
    if not name:
        raise fields.fail("calculator/@name", "is missing")
    Fields(node, fields.where, "valuation/calculator").finish()
    return name


def evaluation_date(analytics: Fields) -> dt.date:
    return analytics.fields("evaluation").date("date")


def write_analytics(analytics: Fields, figures: Iterable[Figure], extra: Iterable[etree._Element] = ()) -> None:
    """Replace every output child of analytics (all but `evaluation`) with the figures, in order.

    An input child that is not among the outputs is an unknown field: the caller asked for a figure
    this calculator does not give."""
    figures = list(figures)
    extra = list(extra)
    outputs = {name.split("/")[0] for name, _ in figures} | {node.tag for node in extra}
    for child in element_children(analytics.element):
        if child.tag == "evaluation":
            continue
        if child.tag not in outputs:
            gives = ", ".join(sorted(outputs))
            raise analytics.fail(child.tag, f"is not a figure of this calculator (it gives {gives})")
        analytics.element.remove(child)
    for name, value in figures:
        if isinstance(value, float) and not math.isfinite(value):
            raise PricingError(analytics.where, f"{name} is {value}; a non-finite result is refused")
        _ensure(analytics.element, name).text = value if isinstance(value, str) else format_figure(name, value)
    for node in extra:
        analytics.element.append(node)


def format_figure(name: str, value: float) -> str:
    """Amounts of money with 2 decimals, every other figure with 12 significant digits."""
    if name.split("/")[-1] == "amount":
        text = f"{value:.2f}"
        return "0.00" if text == "-0.00" else text
    return format(value, ".12g")


def _ensure(parent: etree._Element, path: str) -> etree._Element:
    node = parent
    for name in path.split("/"):
        existing = next((child for child in element_children(node) if child.tag == name), None)
        node = existing if existing is not None else etree.SubElement(node, name)
    return node


def text_element(tag: str, text: str, **attributes: str) -> etree._Element:
    node = etree.Element(tag, attributes)
    node.text = text
    return node
