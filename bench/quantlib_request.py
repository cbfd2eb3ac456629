"""The script-quantlib request: one group of bonds and European options on one end-of-day market."""

from __future__ import annotations

VALUATION_DATE = "2026-11-30"
DEPOSITS = (("1M", 0.0402), ("3M", 0.0410), ("6M", 0.0415), ("1Y", 0.0412))
SWAPS = (("2Y", 0.0398), ("3Y", 0.0391), ("5Y", 0.0389), ("7Y", 0.0394), ("10Y", 0.0403), ("15Y", 0.0412),
         ("20Y", 0.0415), ("30Y", 0.0410))


def market() -> str:
    quotes = "".join(f'<deposit tenor="{tenor}">{rate}</deposit>' for tenor, rate in DEPOSITS)
    quotes += "".join(f'<swap tenor="{tenor}">{rate}</swap>' for tenor, rate in SWAPS)
    return (f'<market name="EOD"><valuationDate>{VALUATION_DATE}</valuationDate><curve currency="EUR">{quotes}'
            f"</curve><equity><spot>100</spot><volatility>0.22</volatility><dividendYield>0.01</dividendYield>"
            f"</equity></market>")


def instrument(index: int) -> str:
    if index % 2:
        return (f'<instrument name="B{index}" type="bond"><coupon>{0.02 + index % 7 * 0.005:.4f}</coupon>'
                f"<maturityYears>{index % 30 + 1}</maturityYears><frequency>2</frequency><face>100</face>"
                f"</instrument>")
    kind = "call" if index % 4 else "put"
    return (f'<instrument name="O{index}" type="option"><optionType>{kind}</optionType>'
            f"<strike>{80 + index % 41}</strike><expiryYears>{0.25 + index % 8 * 0.25}</expiryYears>"
            f"<notional>1000</notional></instrument>")


def quantlib_request(tasks: int) -> bytes:
    instruments = "".join(instrument(i) for i in range(1, tasks + 1))
    return (f'<?xml version="1.0" encoding="UTF-8"?><vnml><project name="eod">{market()}'
            f"<portfolio>{instruments}</portfolio>"
            f'<group name="price"><valuation name="v" use="vn:link(/vnml/project/portfolio, instrument)">'
            f'<instrument select="."/><market select="/vnml/project/market"/>'
            f"<analytics><price><amount/></price></analytics></valuation></group></project></vnml>").encode()
