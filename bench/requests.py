"""Request documents for the benchmarks: N groups chained by vn:link, T tasks each, optional bulk."""

from __future__ import annotations


def chained_request(groups: int, tasks: int, bytes_per_instrument: int = 0, compact: bool = False) -> bytes:
    """Group 1 fans out over `tasks` instruments; group g reads group g-1's results (vn:link).
    `compact` instruments carry a coupon only, so that 100,000 of them fit in PAYLOAD_MAX_BYTES."""
    bulk = _cashflows(bytes_per_instrument)
    instruments = "".join(
        f'<instrument name="I{i}"><coupon>0.04</coupon></instrument>' if compact else
        f'<instrument name="I{i}"><coupon>0.04</coupon><maturityYears>{i % 30 + 1}</maturityYears>'
        f"<notional>1000000</notional>{bulk}</instrument>" for i in range(1, tasks + 1))
    parts = ['<group name="g1"><valuation name="v1" use="vn:link(/vnml/project/portfolio, instrument)">'
             '<instrument select="."/><market select="/vnml/project/market"/>'
             '<analytics><price><amount/></price></analytics></valuation></group>']
    for g in range(2, groups + 1):
        parts.append(f'<group name="g{g}"><valuation name="v{g}" use="vn:link(/vnml/project/group[{g - 1}], '
                     f'valuation)"><basePrice><amount select="./analytics/price/amount"/></basePrice>'
                     f'<analytics><price><amount/></price></analytics></valuation></group>')
    return (f'<?xml version="1.0" encoding="UTF-8"?><vnml><project name="bench">'
            f'<market name="M"><yield>0.0415</yield></market><portfolio>{instruments}</portfolio>'
            f'{"".join(parts)}</project></vnml>').encode()


def _cashflows(size: int) -> str:
    """Reference data that makes an instrument about `size` bytes bigger (a cash-flow schedule)."""
    if size <= 0:
        return ""
    flow = '<flow date="2030-06-30" amount="21250.00"/>'
    return "<cashflows>" + flow * max(1, size // len(flow)) + "</cashflows>"


def sized_request(total_bytes: int, tasks: int) -> bytes:
    """One group of `tasks` tasks whose document is close to `total_bytes` (under it)."""
    base = len(chained_request(1, tasks))
    per_instrument = max(0, (total_bytes - base) // tasks - 64)
    return chained_request(1, tasks, per_instrument)
