"""QuantLib pricers for the mesh: bonds, swaps, FX forwards, European and American options, their risk
by bump and reprice, and totals by currency and book (docs/pricers.md)."""

from __future__ import annotations

from pricers.errors import PricingError
from pricers.valuation import value, value_only

__all__ = ["PricingError", "value", "value_only"]
