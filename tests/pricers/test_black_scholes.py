"""European options against the Black-Scholes-Merton closed form computed here (math and NormalDist)."""

from __future__ import annotations

import math
from statistics import NormalDist

import pytest

from tests.pricers.tasks import equity, figure, instrument, task, value, zero_curve

N = NormalDist()
SPOT, RATE, DIVIDEND, VOL = 100.0, 0.04, 0.015, 0.25
MARKET = zero_curve("USD", {"1Y": RATE, "10Y": RATE}) + equity("XYZ", "USD", SPOT, DIVIDEND, VOL)
# Valued 2025-06-30, expiring 2026-06-30: 365 days, T = 1 on Actual/365F.
T = 365 / 365
# Both sides evaluate the same formula in double precision: only rounding separates them.
TOLERANCE = 1e-9


def black_scholes(kind: str, strike: float) -> dict[str, float]:
    sqrt_t = math.sqrt(T)
    d1 = (math.log(SPOT / strike) + (RATE - DIVIDEND + VOL * VOL / 2) * T) / (VOL * sqrt_t)
    d2 = d1 - VOL * sqrt_t
    growth, discount = math.exp(-DIVIDEND * T), math.exp(-RATE * T)
    sign = 1 if kind == "call" else -1
    price = sign * (SPOT * growth * N.cdf(sign * d1) - strike * discount * N.cdf(sign * d2))
    theta = (-SPOT * growth * N.pdf(d1) * VOL / (2 * sqrt_t) - sign * RATE * strike * discount * N.cdf(sign * d2)
             + sign * DIVIDEND * SPOT * growth * N.cdf(sign * d1))
    return {"unitPrice": price, "delta": sign * growth * N.cdf(sign * d1),
            "gamma": growth * N.pdf(d1) / (SPOT * VOL * sqrt_t), "vega": SPOT * growth * N.pdf(d1) * sqrt_t,
            "theta": theta, "rho": sign * strike * T * discount * N.cdf(sign * d2)}


def priced(kind: str, strike: float, quantity: float = 1.0) -> bytes:
    option = instrument("OPT", "europeanOption", underlying="XYZ", optionType=kind, strike=strike,
                        maturity="2026-06-30", quantity=quantity)
    return value(task(option, MARKET))


@pytest.mark.parametrize("kind", ["call", "put"])
@pytest.mark.parametrize("strike", [80.0, 100.0, 125.0])
def test_price_and_greeks_match_the_closed_form(kind: str, strike: float) -> None:
    result = priced(kind, strike)
    for name, expected in black_scholes(kind, strike).items():
        assert figure(result, name) == pytest.approx(expected, rel=TOLERANCE, abs=TOLERANCE), name


def test_the_position_value_is_quantity_times_the_unit_price() -> None:
    result = priced("call", 100.0, quantity=-250)
    # analytics/price/amount is written with 2 decimals.
    assert figure(result, "price/amount") == pytest.approx(-250 * black_scholes("call", 100.0)["unitPrice"], abs=0.005)


@pytest.mark.parametrize("strike", [70.0, 100.0, 140.0])
def test_put_call_parity(strike: float) -> None:
    call, put = figure(priced("call", strike), "unitPrice"), figure(priced("put", strike), "unitPrice")
    parity = SPOT * math.exp(-DIVIDEND * T) - strike * math.exp(-RATE * T)
    # Figures carry 12 significant digits: 1e-9 on prices of tens.
    assert call - put == pytest.approx(parity, abs=1e-9)
