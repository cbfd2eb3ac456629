"""The calculators a valuation names in `<calculator name="...">`: price, risk and aggregate."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Iterator

import QuantLib as ql
from lxml import etree

from pricers import aggregate, risk
from pricers.conventions import to_ql_date
from pricers.errors import PricingError
from pricers.inputs import Fields
from pricers.instrument import describe, price_instrument
from pricers.market.data import Market
from pricers.task import Figure, evaluation_date, write_analytics

# QuantLib's evaluation date is one process-wide setting: valuations in threads take turns.
_EVALUATION_LOCK = threading.Lock()


def run_price(valuation: Fields, only: str | None) -> None:
    _not_aggregate(valuation, only)
    analytics = valuation.fields("analytics")
    with _evaluation(evaluation_date(analytics)) as today:
        instrument = valuation.child("instrument")
        market = _market(valuation, instrument, today)
        priced = price_instrument(instrument, market, only)
    analytics.where = market.fields.where  # the product and instrument, for an unknown figure
    figures: list[Figure] = [("price/amount", priced.value), ("price/currency", priced.currency)]
    write_analytics(analytics, figures + list(priced.figures.items()))


def run_risk(valuation: Fields, only: str | None) -> None:
    _not_aggregate(valuation, only)
    analytics = valuation.fields("analytics")
    with _evaluation(evaluation_date(analytics)) as today:
        instrument = valuation.child("instrument")
        market = _market(valuation, instrument, today)
        figures, buckets = risk.bump_and_reprice(instrument, market, valuation.fields("base"), only)
    analytics.where = market.fields.where
    write_analytics(analytics, figures, [buckets])


def run_aggregate(valuation: Fields, only: str | None) -> None:
    if only not in (None, "aggregate"):
        raise PricingError(valuation.where, f"field valuation/calculator: this pricer values only {only!r}")
    analytics = valuation.fields("analytics")
    evaluation_date(analytics)
    write_analytics(analytics, [], aggregate.totals(valuation))


def _market(valuation: Fields, instrument: etree._Element, today: ql.Date) -> Market:
    """The valuation's market, its errors naming the instrument it is read for."""
    _, where = describe(instrument)
    return Market(Fields(valuation.child("market"), where, "valuation/market"), today)


def _not_aggregate(valuation: Fields, only: str | None) -> None:
    if only == "aggregate":
        raise PricingError(valuation.where, "field valuation/calculator: this pricer only aggregates")


CALCULATORS = {"price": run_price, "risk": run_risk, "aggregate": run_aggregate}


@contextlib.contextmanager
def _evaluation(date: dt.date) -> Iterator[ql.Date]:
    """Hold the lock and set QuantLib's evaluation date for one valuation."""
    with _EVALUATION_LOCK:
        today = to_ql_date(date)
        ql.Settings.instance().evaluationDate = today
        yield today
