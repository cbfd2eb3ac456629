"""Result normalisation: what an executor printed or returned becomes the task's result XML.

Every executor (script or Python) ends in `normalise_result`, so the legacy number form, the XML forms
and their errors behave the same whichever way a task was run (SPEC section 9).
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from lxml import etree

from vnas.task import TaskFailed
from vncommon import errortext, vnml
from vncommon.errors import MalformedXml
from vncommon.xmlsafe import parse_xml, serialize

_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_PREVIEW_CHARS = 40
PRICE_PATH = ("analytics", "price", "amount")
CENT = Decimal("0.01")


def normalise_result(task_xml: bytes, output: bytes) -> bytes:
    """Turn executor output into result XML: a number goes into the task's price, XML is checked."""
    text = output.strip()
    if not text:
        raise TaskFailed("output is empty; expected result XML or a single positive number")
    if text.startswith(b"<"):
        return _checked_result_xml(text)
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError:
        raise TaskFailed(f"output is neither XML nor a number ({len(text)} bytes, not UTF-8)") from None
    if _NUMBER.match(decoded):
        return price_into_task(task_xml, Decimal(decoded))
    raise TaskFailed(errortext.compose(f"output is neither XML nor a single number ({len(text)} bytes)",
                                       f"output starts with {decoded[:_PREVIEW_CHARS]!r}"))


def _checked_result_xml(data: bytes) -> bytes:
    try:
        root = parse_xml(data, what="result")
    except MalformedXml as exc:
        raise TaskFailed(errortext.compose("output is not valid XML", exc.message)) from None
    if not vnml.is_named(root, vnml.VALUATION) and find_valuation(root) is None:
        raise TaskFailed(f"result XML must be a task document with project/group/valuation or a bare "
                         f"<valuation> (in no namespace); got root <{root.tag}>")
    return serialize(root)


def price_into_task(task_xml: bytes, value: Decimal) -> bytes:
    """The legacy number form: the whole task document with the price written with 2 decimals.

    Decimal arithmetic rounds half up on the printed digits (100.125 -> 100.13), as a price should.
    """
    if not value.is_finite() or value <= 0:
        raise TaskFailed(f"output number {value} is not positive; a price must be > 0")
    try:
        root = parse_xml(task_xml, what="task XML")
    except MalformedXml as exc:
        raise TaskFailed(f"cannot write the price: {exc.message}") from None
    valuation = root if vnml.is_named(root, vnml.VALUATION) else find_valuation(root)
    if valuation is None:
        raise TaskFailed("cannot write the price: the task XML has no project/group/valuation")
    amount = _ensure_path(valuation, PRICE_PATH)
    try:
        amount.text = str(value.quantize(CENT, rounding=ROUND_HALF_UP))
    except InvalidOperation:
        raise TaskFailed(f"output number {value} is too large for a price") from None
    return serialize(root)


def find_valuation(root: etree._Element) -> etree._Element | None:
    """The task's valuation: project/group/valuation under the root, as vnvs finds it (vncommon.vnml)."""
    for group in vnml.groups_of(root):
        for valuation in vnml.valuations_of(group):
            return valuation
    return None


def _ensure_path(parent: etree._Element, path: tuple[str, ...]) -> etree._Element:
    """The first element along `path`, creating what is missing (a task may omit analytics)."""
    node = parent
    for name in path:
        existing = next(iter(vnml.children(node, name)), None)
        node = existing if existing is not None else etree.SubElement(node, name)
    return node
