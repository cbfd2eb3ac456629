"""Task documents for the pricer tests: one valuation with an instrument, a market and analytics."""

from __future__ import annotations

from lxml import etree

import pricers

TODAY = "2025-06-30"


def fields(**values: object) -> str:
    return "".join(f"<{name}>{value}</{name}>" for name, value in values.items())


def zero_curve(currency: str, rates: dict[str, float], compounding: str = "Continuous",
               day_count: str = "Actual/365F", conventions: str = "") -> str:
    quotes = "".join(f'<quote tenor="{tenor}">{rate!r}</quote>' for tenor, rate in rates.items())
    return (f'<curve name="{currency}"><dayCount>{day_count}</dayCount><calendar>NullCalendar</calendar>'
            f"<settlementDays>0</settlementDays>{conventions}<zeros><compounding>{compounding}</compounding>"
            f"{quotes}</zeros></curve>")


def equity(name: str, currency: str, spot: float, dividend_yield: float, vol: float) -> str:
    return (f'<equity name="{name}"><currency>{currency}</currency><spot>{spot!r}</spot>'
            f"<dividendYield>{dividend_yield!r}</dividendYield><volatility><dayCount>Actual/365F</dayCount>"
            f"<calendar>NullCalendar</calendar><flat>{vol!r}</flat></volatility></equity>")


def instrument(name: str, product: str, book: str = "TEST", **values: object) -> str:
    return f'<instrument name="{name}">{fields(product=product, book=book, **values)}</instrument>'


def task(instrument_xml: str, market_xml: str, calculator: str = "price", today: str = TODAY,
         extra: str = "", analytics: str = "") -> bytes:
    return (f'<vnml><project name="t"><group name="g"><valuation name="v"><calculator name="{calculator}"/>'
            f"{instrument_xml}<market name=\"M\">{market_xml}</market>{extra}"
            f"<analytics><evaluation><date>{today}</date></evaluation>{analytics}</analytics>"
            f'<vndb externalId="t"/></valuation></group></project></vnml>').encode()


def analytics_of(result: bytes) -> etree._Element:
    found = etree.fromstring(result).find("project/group/valuation/analytics")
    assert found is not None
    return found


def figure(result: bytes, path: str) -> float:
    text = analytics_of(result).findtext(path)
    assert text is not None, f"no analytics/{path} in the result"
    return float(text)


def value(task_xml: bytes) -> bytes:
    return pricers.value(task_xml)
