"""Totals of earlier groups' results by currency and by book (within a book, per currency).

The valuation holds copies of earlier groups (`<priced select="vn:link(/vnml/project, group[1])"/>`
becomes a `<group>` with that group's result valuations). Each result valuation gives its instrument
(for the name and the book) and analytics: price/amount with price/currency, and dv01 and vega when
it is a risk result. Figures of one instrument from several groups are joined; the same figure
given twice with different values is refused.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

from lxml import etree

from pricers.errors import PricingError
from pricers.inputs import Fields, parse_number
from pricers.instrument import book_of, describe
from pricers.task import format_figure

SUMMED = ("price/amount", "dv01", "vega")
# What each calculator's results contribute: prices from price results, risk from risk results.
CONTRIBUTES = {"price": ("price/amount",), "risk": ("dv01", "vega")}


def totals(valuation: Fields) -> list[etree._Element]:
    groups = valuation.all("group")
    if not groups:
        raise valuation.fail("group", "is missing; select the groups to total (vn:link(/vnml/project, group[1]))")
    positions: dict[str, dict[str, float]] = {}
    keys: dict[str, tuple[str, str]] = {}
    for group in groups:
        for result in group.findall("valuation"):
            name, currency, book, figures = _position(result)
            if name in keys and keys[name] != (currency, book):
                raise PricingError(f"instrument {name}", "its results disagree on its currency or book")
            keys[name] = (currency, book)
            known = positions.setdefault(name, {})
            for figure, value in figures.items():
                if figure in known and abs(known[figure] - value) > 1e-9 * max(1.0, abs(value)):
                    raise PricingError(f"instrument {name}", f"two results give different {figure}")
                known[figure] = value
    by_currency: dict[tuple[str, ...], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    by_book: dict[tuple[str, ...], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for name, figures in positions.items():
        currency, book = keys[name]
        for table, key in ((by_currency, (currency,)), (by_book, (book, currency))):
            table[key]["instruments"] += 1
            for figure, value in figures.items():
                table[key][figure] += value
    return [_table("currency", ("currency",), by_currency), _table("book", ("book", "currency"), by_book)]


def _position(result: etree._Element) -> tuple[str, str, str, dict[str, float]]:
    instrument = result.find("instrument")
    if instrument is None:
        raise PricingError(f"valuation {result.get('name') or '?'}", "field group/valuation/instrument is missing")
    _, where = describe(instrument)
    book = book_of(instrument)
    analytics = result.find("analytics")
    if analytics is None:
        raise PricingError(where, "field group/valuation/analytics is missing")
    currency = (analytics.findtext("price/currency") or "").strip()
    if not currency:
        raise PricingError(where, "field group/valuation/analytics/price/currency is missing")
    calculator = result.find("calculator")
    kind = calculator.get("name", "") if calculator is not None else ""
    if kind not in CONTRIBUTES:
        raise PricingError(where, f"field group/valuation/calculator/@name: {kind!r} is not a price or risk result")
    figures: dict[str, float] = {}
    for figure in CONTRIBUTES[kind]:
        text = analytics.findtext(figure)
        if text is not None:
            figures[figure] = parse_number(text.strip(), _failing(where, figure))
    if kind == "price" and "price/amount" not in figures:
        raise PricingError(where, "field group/valuation/analytics/price/amount is missing")
    return instrument.get("name") or "", currency, book, figures


def _table(by: str, labels: tuple[str, ...], rows: dict[tuple[str, ...], dict[str, float]]) -> etree._Element:
    table = etree.Element("totals", by=by)
    for key in sorted(rows):
        total = etree.SubElement(table, "total", dict(zip(labels, key, strict=True)))
        figures = rows[key]
        etree.SubElement(total, "instruments").text = str(int(figures.pop("instruments")))
        for figure in SUMMED:
            if figure in figures:
                tag = "value" if figure == "price/amount" else figure
                etree.SubElement(total, tag).text = format_figure("amount", figures[figure])
    return table


def _failing(where: str, figure: str) -> Callable[[str], PricingError]:
    return lambda message: PricingError(where, f"field group/valuation/analytics/{figure}: {message}")
