"""American options: a call without dividends is worth the European call (closed form here), and a put
matches a Cox-Ross-Rubinstein tree written out in this test."""

from __future__ import annotations

import math
from statistics import NormalDist

import pytest

from tests.pricers.tasks import equity, figure, instrument, task, value, zero_curve

SPOT, RATE, VOL, T = 100.0, 0.05, 0.30, 1.0
# Finite differences on a 200 x 200 grid against a closed form / a 2,000-step tree: a cent on ~10.
TOLERANCE = 0.01


def market(dividend: float) -> str:
    return zero_curve("USD", {"1Y": RATE, "5Y": RATE}) + equity("XYZ", "USD", SPOT, dividend, VOL)


def american(kind: str, strike: float, dividend: float = 0.0) -> bytes:
    option = instrument("AM", "americanOption", underlying="XYZ", optionType=kind, strike=strike,
                        maturity="2026-06-30", quantity=1)
    return value(task(option, market(dividend)))


def european_call(strike: float) -> float:
    d1 = (math.log(SPOT / strike) + (RATE + VOL * VOL / 2) * T) / (VOL * math.sqrt(T))
    d2 = d1 - VOL * math.sqrt(T)
    return SPOT * NormalDist().cdf(d1) - strike * math.exp(-RATE * T) * NormalDist().cdf(d2)


def crr_put(strike: float, steps: int = 2000) -> float:
    dt = T / steps
    up = math.exp(VOL * math.sqrt(dt))
    p = (math.exp(RATE * dt) - 1 / up) / (up - 1 / up)
    discount = math.exp(-RATE * dt)
    values = [max(strike - SPOT * up ** (2 * i - steps), 0.0) for i in range(steps + 1)]
    for step in range(steps - 1, -1, -1):
        values = [max(discount * (p * values[i + 1] + (1 - p) * values[i]), strike - SPOT * up ** (2 * i - step))
                  for i in range(step + 1)]
    return values[0]


@pytest.mark.parametrize("strike", [90.0, 100.0, 110.0])
def test_an_american_call_without_dividends_is_the_european_call(strike: float) -> None:
    assert figure(american("call", strike), "unitPrice") == pytest.approx(european_call(strike), abs=TOLERANCE)


def test_an_american_put_matches_a_binomial_tree_and_beats_the_european_put() -> None:
    price = figure(american("put", 100.0), "unitPrice")
    european_put = european_call(100.0) - SPOT + 100.0 * math.exp(-RATE * T)
    assert price == pytest.approx(crr_put(100.0), abs=TOLERANCE)
    assert price > european_put + 0.1  # the early-exercise premium at 5% rates is tens of cents
    assert -1 < figure(american("put", 100.0), "delta") < 0
