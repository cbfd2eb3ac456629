"""European (analytic Black-Scholes-Merton) and American (finite differences) equity options.

The underlying is an `equity` of the market: spot, continuous dividend yield and Black vols; rates
are the curve of the equity's currency. Figures per unit of the underlying: unitPrice, delta, gamma,
theta (per year) and, for European options, vega and rho (per 1.00 of vol and of rate); the value is
quantity x unitPrice.
"""

from __future__ import annotations

import QuantLib as ql

from pricers.inputs import Fields
from pricers.market.data import Market
from pricers.products.base import Priced, future_date

TYPES = {"call": ql.Option.Call, "put": ql.Option.Put}
# Finite-difference grid of American options: time steps, spot steps (method, not an input).
FD_TIME_STEPS = 200
FD_SPOT_STEPS = 200


def _option(instrument: Fields, market: Market, american: bool) -> tuple[ql.VanillaOption, ql.Date, str, float,
                                                                          ql.BlackScholesMertonProcess]:
    underlying = market.equity(instrument.text("underlying"), instrument)
    option_type = TYPES[instrument.choice("optionType", tuple(TYPES))]
    strike = instrument.number("strike", positive=True)
    expiry = future_date(instrument, market, "maturity")
    quantity = instrument.number("quantity")
    curve = market.curve(underlying.currency, instrument, "underlying")
    instrument.finish()
    if underlying.vols.last_expiry is not None and expiry > underlying.vols.last_expiry:
        raise instrument.fail("maturity", f"is after the last expiry of {underlying.name}'s vol surface")
    process = ql.BlackScholesMertonProcess(ql.QuoteHandle(ql.SimpleQuote(underlying.spot)), underlying.dividends,
                                           curve.handle, underlying.vols.handle)
    exercise = ql.AmericanExercise(market.today, expiry) if american else ql.EuropeanExercise(expiry)
    option = ql.VanillaOption(ql.PlainVanillaPayoff(option_type, strike), exercise)
    return option, expiry, underlying.currency, quantity, process


def price_european(instrument: Fields, market: Market) -> Priced:
    option, _, currency, quantity, process = _option(instrument, market, american=False)
    option.setPricingEngine(ql.AnalyticEuropeanEngine(process))
    unit = option.NPV()
    return Priced(currency, quantity * unit, {
        "unitPrice": unit, "delta": option.delta(), "gamma": option.gamma(), "vega": option.vega(),
        "theta": option.theta(), "rho": option.rho(),
    })


def price_american(instrument: Fields, market: Market) -> Priced:
    option, _, currency, quantity, process = _option(instrument, market, american=True)
    option.setPricingEngine(ql.FdBlackScholesVanillaEngine(process, FD_TIME_STEPS, FD_SPOT_STEPS))
    unit = option.NPV()
    return Priced(currency, quantity * unit, {
        "unitPrice": unit, "delta": option.delta(), "gamma": option.gamma(), "theta": option.theta(),
    })
