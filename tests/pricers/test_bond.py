"""Fixed-rate bonds against textbook discounting: the cash flows written out here, discounted at a flat
semiannual yield on 30/360, so every coupon period is exactly half a year."""

from __future__ import annotations

import pytest
from lxml import etree

from tests.pricers.tasks import figure, instrument, task, value, zero_curve

YIELD, COUPON, NOTIONAL = 0.045, 0.04, 1_000_000
CURVE = zero_curve("USD", {"1Y": YIELD, "10Y": YIELD}, compounding="Semiannual", day_count="30/360")
BOND = instrument("T5", "bond", currency="USD", notional=NOTIONAL, coupon=COUPON, issueDate="2025-06-30",
                  maturity="2030-06-30", frequency="Semiannual", dayCount="30/360", calendar="NullCalendar",
                  settlementDays=0)
PRICE_TOLERANCE = 1e-9  # per 100 face: the figures carry 12 significant digits
YIELD_TOLERANCE = 1e-8  # QuantLib solves the yield to 1e-8 at best; we ask no more
RELATIVE_TOLERANCE = 1e-6  # duration and convexity, taken at that solved yield


def cash_flows(first_time: float) -> list[tuple[float, float]]:
    """(time in years, amount per 100) of the 10 semiannual coupons and the redemption."""
    flows = [(first_time + 0.5 * k, 100 * COUPON / 2) for k in range(10)]
    flows[-1] = (flows[-1][0], flows[-1][1] + 100)
    return flows


def textbook_price(y: float, first_time: float) -> float:
    return sum(amount * (1 + y / 2) ** (-2 * t) for t, amount in cash_flows(first_time))


def test_at_issue_price_yield_duration_and_convexity_are_the_textbook_ones() -> None:
    result = value(task(BOND, CURVE))
    price = textbook_price(YIELD, 0.5)
    duration = sum(t * a * (1 + YIELD / 2) ** (-2 * t - 1) for t, a in cash_flows(0.5)) / price
    convexity = sum(a * t * (t + 0.5) * (1 + YIELD / 2) ** (-2 * t - 2) for t, a in cash_flows(0.5)) / price
    assert figure(result, "dirtyPrice") == pytest.approx(price, abs=PRICE_TOLERANCE)
    assert figure(result, "cleanPrice") == pytest.approx(price, abs=PRICE_TOLERANCE)
    assert figure(result, "accruedInterest") == pytest.approx(0.0, abs=PRICE_TOLERANCE)
    assert figure(result, "yield") == pytest.approx(YIELD, abs=YIELD_TOLERANCE)
    assert figure(result, "modifiedDuration") == pytest.approx(duration, rel=RELATIVE_TOLERANCE)
    assert figure(result, "convexity") == pytest.approx(convexity, rel=RELATIVE_TOLERANCE)
    assert figure(result, "price/amount") == pytest.approx(NOTIONAL * price / 100, abs=0.005)
    assert result.count(b"<currency>USD</currency>") == 2  # the instrument's and the price's


def test_mid_period_the_accrued_coupon_separates_clean_and_dirty() -> None:
    # 2025-09-30 is 90 of the period's 180 days: half a coupon accrued, next flow in a quarter year.
    result = value(task(BOND, CURVE, today="2025-09-30"))
    dirty = textbook_price(YIELD, 0.25)
    assert figure(result, "accruedInterest") == pytest.approx(100 * COUPON / 2 / 2, abs=PRICE_TOLERANCE)
    assert figure(result, "dirtyPrice") == pytest.approx(dirty, abs=PRICE_TOLERANCE)
    assert figure(result, "cleanPrice") == pytest.approx(dirty - 1.0, abs=PRICE_TOLERANCE)
    assert figure(result, "yield") == pytest.approx(YIELD, abs=YIELD_TOLERANCE)


def test_a_bond_whose_coupon_is_its_yield_prices_at_par() -> None:
    par = BOND.replace(f"<coupon>{COUPON}</coupon>", f"<coupon>{YIELD}</coupon>")
    assert figure(value(task(par, CURVE)), "cleanPrice") == pytest.approx(100.0, abs=PRICE_TOLERANCE)


def test_dv01_by_bump_and_reprice_is_the_textbook_central_difference() -> None:
    priced = value(task(BOND, CURVE))
    base = f"<base><price><amount>{figure(priced, 'price/amount'):.2f}</amount><currency>USD</currency></price></base>"
    risk = value(task(BOND, CURVE, calculator="risk", extra=base))
    bp = 1e-4
    expected = NOTIONAL / 100 * (textbook_price(YIELD - bp, 0.5) - textbook_price(YIELD + bp, 0.5)) / 2
    # Every zero quote moves by 1bp, so the flat yield does: the same central difference, to rounding.
    assert figure(risk, "dv01") == pytest.approx(expected, rel=1e-9)
    buckets = [float(bucket.text or "nan") for bucket in etree.fromstring(risk).iter("bucket")]
    assert [bucket.get("tenor") for bucket in etree.fromstring(risk).iter("bucket")] == ["1Y", "10Y"]
    # The buckets add up to the parallel figure to first order.
    assert sum(buckets) == pytest.approx(expected, rel=1e-6)
