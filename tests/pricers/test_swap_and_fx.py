"""Swaps and FX forwards against discount factors computed here from the zero rates (exp(-r t))."""

from __future__ import annotations

import datetime as dt
import itertools
import math

import pytest

from tests.pricers.tasks import figure, instrument, task, value, zero_curve

TODAY = dt.date(2025, 6, 30)
# Upward-sloping continuous zeros on Actual/365F, linear in time between pillars (QuantLib's ZeroCurve).
USD_ZEROS = {"1Y": 0.030, "5Y": 0.040}
PILLARS = [(TODAY, 0.030), (dt.date(2026, 6, 30), 0.030), (dt.date(2030, 6, 30), 0.040)]
CONVENTIONS = ("<swapConventions><fixedFrequency>Annual</fixedFrequency><fixedDayCount>Actual/365F</fixedDayCount>"
               "<floatingTenor>1Y</floatingTenor></swapConventions>")
USD = zero_curve("USD", USD_ZEROS, conventions=CONVENTIONS)
NOTIONAL = 10_000_000


def years(date: dt.date) -> float:
    return (date - TODAY).days / 365


def discount(date: dt.date) -> float:
    t = years(date)
    for (d0, r0), (d1, r1) in itertools.pairwise(PILLARS):
        if date <= d1:
            t0, t1 = years(d0), years(d1)
            rate = r0 + (r1 - r0) * (t - t0) / (t1 - t0)
            return math.exp(-rate * t)
    raise AssertionError("past the last pillar")


def swap(fixed_rate: float, side: str = "payer") -> str:
    return instrument("S4", "swap", currency="USD", notional=NOTIONAL, side=side, fixedRate=fixed_rate,
                      startDate="2026-06-30", maturity="2030-06-30")


def test_the_fair_rate_is_the_par_rate_of_the_discount_factors() -> None:
    dates = [dt.date(year, 6, 30) for year in range(2026, 2031)]
    annuity = sum((end - start).days / 365 * discount(end) for start, end in itertools.pairwise(dates))
    par = (discount(dates[0]) - discount(dates[-1])) / annuity
    result = value(task(swap(0.035), USD))
    assert figure(result, "fairRate") == pytest.approx(par, abs=1e-11)  # figures carry 12 significant digits
    # PV01 of a payer: the fixed leg's annuity, paid.
    assert figure(result, "pv01") == pytest.approx(-NOTIONAL * annuity * 1e-4, rel=1e-10)
    assert figure(result, "price/amount") == pytest.approx(NOTIONAL * (par - 0.035) * annuity, abs=0.01)


@pytest.mark.parametrize("side", ["payer", "receiver"])
def test_a_swap_at_its_fair_rate_is_worth_nothing(side: str) -> None:
    fair = figure(value(task(swap(0.035, side), USD)), "fairRate")
    assert figure(value(task(swap(fair, side), USD)), "price/amount") == pytest.approx(0.0, abs=0.01)


def fx_forward(side: str, strike: float) -> str:
    return instrument("F1", "fxForward", pair="EURUSD", side=side, notional=NOTIONAL, strike=strike,
                      maturity="2027-06-30")


def test_the_fx_forward_is_spot_times_the_foreign_over_the_domestic_discount_factor() -> None:
    eur_rate, spot, maturity = 0.02, 1.1787, dt.date(2027, 6, 30)
    market = USD + zero_curve("EUR", {"1Y": eur_rate, "5Y": eur_rate}) + f'<fxSpot name="EURUSD">{spot}</fxSpot>'
    forward = spot * math.exp(-eur_rate * years(maturity)) / discount(maturity)
    bought = value(task(fx_forward("buy", 1.20), market))
    assert figure(bought, "forwardRate") == pytest.approx(forward, rel=1e-11)
    assert figure(bought, "price/amount") == pytest.approx(NOTIONAL * (forward - 1.20) * discount(maturity), abs=0.01)
    sold = value(task(fx_forward("sell", 1.20), market))
    assert figure(sold, "price/amount") == -figure(bought, "price/amount")
    # The inverse pair quoted instead gives the same forward.
    inverse = market.replace(f'<fxSpot name="EURUSD">{spot}</fxSpot>', f'<fxSpot name="USDEUR">{1 / spot!r}</fxSpot>')
    assert figure(value(task(fx_forward("buy", 1.20), inverse)), "forwardRate") == pytest.approx(forward, rel=1e-11)
