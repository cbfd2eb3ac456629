"""Strict reading of XML fields: every field is required unless asked for as optional, and every child
that was not read is an unknown field. Errors name the place (product and instrument) and the field."""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable

from lxml import etree

from pricers.errors import PricingError

_Fail = Callable[[str], PricingError]
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def element_children(element: etree._Element) -> list[etree._Element]:
    """Child elements only: comments and processing instructions are not fields."""
    return [child for child in element if isinstance(child.tag, str)]


class Fields:
    """The children of one element, read by tag. `where` prefixes every error ("bond UST2")."""

    def __init__(self, element: etree._Element, where: str, path: str) -> None:
        self.element = element
        self.where = where
        self.path = path
        self._read: set[str] = set()

    def fail(self, name: str, message: str) -> PricingError:
        return PricingError(self.where, f"field {self.path}/{name}: {message}")

    def failing(self, name: str) -> _Fail:
        """A function making this field's error from a message (for parse_number and parse_date)."""
        return lambda message: self.fail(name, message)

    def _nodes(self, name: str) -> list[etree._Element]:
        self._read.add(name)
        return [child for child in element_children(self.element) if child.tag == name]

    def has(self, name: str) -> bool:
        return bool(self._nodes(name))

    def child(self, name: str) -> etree._Element:
        nodes = self._nodes(name)
        if not nodes:
            raise self.fail(name, "is missing")
        if len(nodes) > 1:
            raise self.fail(name, f"appears {len(nodes)} times; expected once")
        return nodes[0]

    def all(self, name: str) -> list[etree._Element]:
        return self._nodes(name)

    def fields(self, name: str) -> Fields:
        return Fields(self.child(name), self.where, f"{self.path}/{name}")

    def text(self, name: str) -> str:
        node = self.child(name)
        if element_children(node):
            raise self.fail(name, "must be text, not elements")
        value = (node.text or "").strip()
        if not value:
            raise self.fail(name, "is empty")
        return value

    def choice(self, name: str, allowed: tuple[str, ...]) -> str:
        value = self.text(name)
        if value not in allowed:
            raise self.fail(name, f"{value!r} is not one of {', '.join(allowed)}")
        return value

    def number(self, name: str, positive: bool = False) -> float:
        return parse_number(self.text(name), lambda message: self.fail(name, message), positive)

    def integer(self, name: str, minimum: int = 0) -> int:
        value = self.text(name)
        if not re.fullmatch(r"\d+", value) or int(value) < minimum:
            raise self.fail(name, f"{value!r} is not a whole number >= {minimum}")
        return int(value)

    def date(self, name: str) -> dt.date:
        return parse_date(self.text(name), lambda message: self.fail(name, message))

    def finish(self) -> None:
        """Refuse every child element that no reader asked for."""
        unknown = sorted({child.tag for child in element_children(self.element)} - self._read)
        if unknown:
            raise PricingError(self.where, f"unknown field {self.path}/{unknown[0]}"
                               + (f" (and {', '.join(unknown[1:])})" if len(unknown) > 1 else ""))


def parse_number(text: str, fail: _Fail, positive: bool = False) -> float:
    try:
        value = float(text)
    except ValueError:
        raise fail(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise fail(f"{text!r} is not a finite number")
    if positive and value <= 0:
        raise fail(f"{text!r} must be > 0")
    return value


def parse_date(text: str, fail: _Fail) -> dt.date:
    if not _DATE.match(text):
        raise fail(f"{text!r} is not a date (YYYY-MM-DD)")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise fail(f"{text!r} is not a valid date") from None
