#!/usr/bin/env python3
"""Example valuation script for vnas: prices a fixed-coupon bond, or its DV01 from a base price.

Usage: price.py [TASK_XML_PATH]    (reads the task XML from stdin when no path, or "-", is given)

Inputs, read from the task's valuation (project/group/valuation, or a bare <valuation>); every one is
optional and falls back to the default shown:

  instrument/coupon          annual coupon rate as a decimal                  0.05
  instrument/maturity        years to maturity, or an ISO date (YYYY-MM-DD)   10 years
  instrument/maturityYears   years to maturity (when maturity is not given)
  instrument/frequency       coupon payments per year                         2
  instrument/face            face amount (also read from notional)            100
  market: the first of rate, yield, marketRate, discountRate found anywhere
          under the valuation's market element, as a decimal                  0.04
  analytics/evaluation/date  valuation date, used only with a maturity date   2025-01-01
  basePrice                  when present (risk mode), the price the DV01 is scaled from, as its
                             text or in its amount child; empty falls back to the computed price

Output (stdout), exit code 0:
  price mode: the whole task document with analytics/price/amount filled in (2 decimals), plus
              analytics/yield holding the rate used.
  risk mode:  the same with analytics/price/amount set to the base price, analytics/dv01/amount
              (price change for a one basis point fall in the rate, 6 decimals) and
              analytics/modifiedDuration.
  With PRICE_OUTPUT=number in the environment only the price is printed (the legacy number form).

Exit code 2 with a message on stderr when the input is not readable XML, holds no valuation, or gives a
field it reads a value that is not a number (or date): a field that is present is never replaced by its
default. Standard library only; the result depends on nothing but the task XML. The QuantLib pricers
(the `pricers` package, docs/pricers.md) are the real ones; this script is the dependency-free example.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import xml.etree.ElementTree as ET

DEFAULT_COUPON = 0.05
DEFAULT_MATURITY_YEARS = 10.0
DEFAULT_FREQUENCY = 2
DEFAULT_FACE = 100.0
DEFAULT_RATE = 0.04
DEFAULT_VALUATION_DATE = dt.date(2025, 1, 1)
RATE_TAGS = ("rate", "yield", "marketRate", "discountRate")
ONE_BP = 0.0001


def read_input(argv: list[str]) -> bytes:
    if len(argv) > 1 and argv[1] != "-":
        with open(argv[1], "rb") as handle:
            return handle.read()
    return sys.stdin.buffer.read()


def find_valuation(root: ET.Element) -> ET.Element | None:
    if root.tag == "valuation":
        return root
    return root.find("project/group/valuation")


class BadField(ValueError):
    """A field is present but unreadable: the task fails rather than being priced from a default."""


def number(element: ET.Element | None, path: str, default: float) -> float:
    node = element.find(path) if element is not None else None
    if node is None:
        return default
    text = (node.text or "").strip()
    try:
        return float(text)
    except ValueError:
        raise BadField(f"field {node.tag}: {text!r} is not a number") from None


def market_rate(valuation: ET.Element) -> float:
    market = valuation.find("market")
    if market is None:
        return DEFAULT_RATE
    for element in market.iter():
        if element.tag in RATE_TAGS:
            return number(element, ".", DEFAULT_RATE)
    return DEFAULT_RATE


def maturity_years(instrument: ET.Element | None, valuation: ET.Element) -> float:
    node = instrument.find("maturity") if instrument is not None else None
    text = (node.text or "").strip() if node is not None else ""
    if not text:
        return number(instrument, "maturityYears", DEFAULT_MATURITY_YEARS)
    try:
        return float(text)
    except ValueError:
        pass
    try:
        maturity = dt.date.fromisoformat(text[:10])
        date_node = valuation.find("analytics/evaluation/date")
        start_text = (date_node.text or "").strip()[:10] if date_node is not None else ""
        start = dt.date.fromisoformat(start_text) if start_text else DEFAULT_VALUATION_DATE
    except ValueError:
        raise BadField(f"field maturity: {text!r} is neither a number of years nor a date (YYYY-MM-DD)") from None
    return max((maturity - start).days / 365.25, 0.0)


def bond_price(coupon: float, years: float, frequency: int, face: float, rate: float) -> float:
    """Clean price of a fixed-coupon bond with whole coupon periods, discounted at `rate`."""
    periods = max(round(years * frequency), 1)
    per_period = 1 + rate / frequency
    payment = face * coupon / frequency
    annuity = sum(payment / per_period**k for k in range(1, periods + 1))
    return annuity + face / per_period**periods


def set_value(valuation: ET.Element, path: str, text: str) -> None:
    node = valuation
    for name in path.split("/"):
        child = node.find(name)
        node = child if child is not None else ET.SubElement(node, name)
    node.text = text


def value(valuation: ET.Element) -> float:
    """Fill the valuation's analytics; returns the price written to analytics/price/amount."""
    instrument = valuation.find("instrument")
    coupon = number(instrument, "coupon", DEFAULT_COUPON)
    frequency = max(int(number(instrument, "frequency", DEFAULT_FREQUENCY)), 1)
    face = number(instrument, "face", number(instrument, "notional", DEFAULT_FACE))
    years = maturity_years(instrument, valuation)
    rate = market_rate(valuation)
    price = bond_price(coupon, years, frequency, face, rate)
    set_value(valuation, "analytics/yield", f"{rate:.6f}")
    base_node = valuation.find("basePrice")
    if base_node is not None:
        amount_node = base_node.find("amount")
        base_text = ((amount_node if amount_node is not None else base_node).text or "").strip()
        base = number(base_node, "amount" if amount_node is not None else ".", price) if base_text else price
        up = bond_price(coupon, years, frequency, face, rate + ONE_BP)
        down = bond_price(coupon, years, frequency, face, rate - ONE_BP)
        dv01 = base * (down - up) / (2 * price)
        set_value(valuation, "analytics/dv01/amount", f"{dv01:.6f}")
        set_value(valuation, "analytics/modifiedDuration", f"{(down - up) / (2 * price * ONE_BP):.6f}")
        price = base
    set_value(valuation, "analytics/price/amount", f"{price:.2f}")
    return price


def main(argv: list[str]) -> int:
    try:
        root = ET.fromstring(read_input(argv))
    except (OSError, ET.ParseError) as exc:
        print(f"price.py: cannot read the task XML: {exc}", file=sys.stderr)
        return 2
    valuation = find_valuation(root)
    if valuation is None:
        print("price.py: the task XML has no project/group/valuation", file=sys.stderr)
        return 2
    try:
        price = value(valuation)
    except BadField as exc:
        print(f"price.py: {exc}", file=sys.stderr)
        return 2
    if os.environ.get("PRICE_OUTPUT", "").lower() == "number":
        print(f"{price:.2f}")
    else:
        sys.stdout.write(ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
