"""The end-of-day example through a whole mesh with the QuantLib pricers in process, its figures checked
against calculations made here without QuantLib, and the README's excerpt checked against the response."""

from __future__ import annotations

import re
from collections import defaultdict
from decimal import Decimal

import pytest
from lxml import etree

from tests.conftest import ROOT
from tests.e2e.conftest import EXAMPLES, MeshFactory
from tests.e2e.helpers import Status, stub
from vn.v1 import valuation_pb2

pytestmark = pytest.mark.timeout(600)
SYNC_WAIT_MS = 480_000


def by_name(group: etree._Element) -> dict[str, etree._Element]:
    return {v.find("instrument").get("name"): v for v in group.findall("valuation")}  # type: ignore[union-attr]


def number(valuation: etree._Element, path: str) -> float:
    text = valuation.findtext(f"analytics/{path}")
    assert text is not None, f"no analytics/{path}"
    return float(text)


def street_dirty_price(coupon: float, bond_yield: float, first_fraction: float, coupons: int) -> float:
    """Dirty price per 100 of a semiannual bond: flows at (k - 1 + w) half years, discounted at y/2."""
    flows = [(k - 1 + first_fraction, 100 * coupon / 2) for k in range(1, coupons + 1)]
    flows[-1] = (flows[-1][0], flows[-1][1] + 100)
    return sum(amount / (1 + bond_yield / 2) ** periods for periods, amount in flows)


async def test_the_eod_example_values_and_its_figures_hold(start_mesh: MeshFactory) -> None:
    mesh = start_mesh(gateway=False, VNAS_SCRIPT="", VNAS_EXECUTOR="python:pricers:value",
                      SYNC_WAIT_TIMEOUT_MS=str(SYNC_WAIT_MS), VNAS_TASK_TIMEOUT_MS="120000")
    channel, api = stub(mesh)
    async with channel:
        request = valuation_pb2.SubmitRequest(xml=(EXAMPLES / "eod-request.xml").read_bytes(), sync=True)
        done = await api.Submit(request, timeout=SYNC_WAIT_MS / 1000 + 30)
    assert done.status == Status.REQUEST_STATUS_SUCCEEDED, done.failure_detail + mesh.log_tail()
    response = etree.fromstring(done.response_xml)
    price_group, risk_group, report_group = response.findall("project/group")
    prices, risks = by_name(price_group), by_name(risk_group)
    assert len(prices) == len(risks) == 61

    # Risk is taken on the prices group 1 wrote.
    for name, priced in prices.items():
        assert risks[name].findtext("analytics/price/amount") == priced.findtext("analytics/price/amount")

    # Totals: plain decimal sums of the results, by currency and by book.
    expected: dict[tuple[str, ...], dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for name, priced in prices.items():
        currency = priced.findtext("analytics/price/currency") or ""
        for key in (("currency", currency), ("book", priced.findtext("instrument/book") or "", currency)):
            expected[key]["value"] += Decimal(priced.findtext("analytics/price/amount") or "")
            for figure in ("dv01", "vega"):
                if (text := risks[name].findtext(f"analytics/{figure}")) is not None:
                    expected[key][figure] += Decimal(text)
    totals = report_group.find("valuation/analytics")
    assert totals is not None
    seen = 0
    for table in totals.iterfind("totals"):
        for total in table.iterfind("total"):
            key = ("currency", total.get("currency") or "") if table.get("by") == "currency" else (
                "book", total.get("book") or "", total.get("currency") or "")
            for figure, value in expected[key].items():
                # Each figure was rounded once more (2 decimals) than the sum of its parts: a cent per 100 parts.
                assert abs(Decimal(total.findtext(figure) or "") - value) <= Decimal("0.01") * (1 + len(prices) // 100)
            seen += 1
    assert seen == len(expected) == 3 + 7

    # UST-2Y: settles 2025-07-01, 182 of its 183-day first period left; the street formula at its yield.
    ust2 = prices["UST-2Y"]
    dirty = street_dirty_price(0.0375, number(ust2, "yield"), 182 / 183, 4)
    assert number(ust2, "dirtyPrice") == pytest.approx(dirty, abs=1e-8)
    assert number(ust2, "accruedInterest") == pytest.approx(100 * 0.0375 / 2 / 183, abs=1e-10)
    # (Its four coupon dates are business days, so the paid dates are the half-year dates the formula uses.)
    # UST-10Y: 47 of the 184 days from 2025-05-15 to 2025-11-15 accrued at settlement.
    assert number(prices["UST-10Y"], "accruedInterest") == pytest.approx(100 * 0.0425 / 2 * 47 / 184, abs=1e-10)

    # A spot-starting swap at the curve's own 2Y quote is at par.
    swap = prices["IRS-USD-2Y"]
    assert number(swap, "fairRate") == pytest.approx(0.038, abs=1e-10)
    assert abs(number(swap, "price/amount")) <= 1.0

    # FX forwards: covered interest parity and the discounted payoff.
    for name, forward in prices.items():
        if forward.findtext("instrument/product") != "fxForward":
            continue
        rate = number(forward, "spot") * number(forward, "baseDiscount") / number(forward, "quoteDiscount")
        assert number(forward, "forwardRate") == pytest.approx(rate, rel=1e-11), name
        sign = 1 if forward.findtext("instrument/side") == "buy" else -1
        payoff = sign * float(forward.findtext("instrument/notional") or "") * (
            rate - float(forward.findtext("instrument/strike") or "")) * number(forward, "quoteDiscount")
        assert number(forward, "price/amount") == pytest.approx(payoff, abs=0.01), name

    # Every number of the README's excerpt is in this response.
    readme = (ROOT / "README.md").read_text()
    excerpt = readme.split("<!-- eod-excerpt -->")[1]
    numbers = re.findall(r">(-?\d+\.\d+)<", excerpt)
    assert len(numbers) >= 10
    text = done.response_xml.decode()
    for value in numbers:
        assert f">{value}<" in text, f"README shows {value}, which the response does not hold"
