"""Hydration benchmark: a ~10 MiB request whose portfolio fans out to 2,000 tasks (prepare + hydrate_group)."""

from __future__ import annotations

import resource
import sys
import time
import tracemalloc

from vncommon.xmlsafe import parse_xml
from vnvs.hydration import HydrationEngine, HydrationSettings

INSTRUMENTS = 2_000
MARKETS = 50
CASHFLOWS = 80
CURVE_POINTS = 120


def _market(index: int) -> str:
    points = "".join(f'<point tenor="{t}M" rate="0.0{t % 9 + 1}{index % 10}"/>' for t in range(CURVE_POINTS))
    return f'<market name="M{index}" ccy="C{index}"><curve name="OIS">{points}</curve></market>'


def _instrument(index: int) -> str:
    flows = "".join(
        f'<cashflow date="2030-{f % 12 + 1:02d}-15" amount="{1000 + f}.25" kind="coupon"/>' for f in range(CASHFLOWS)
    )
    return (
        f'<instrument name="I{index}" market="M{index % MARKETS}"><notional>1000000</notional>'
        f"<coupon>0.0{index % 7 + 1}</coupon><schedule>{flows}</schedule></instrument>"
    )


def build_request() -> bytes:
    """The benchmark request: big reference data, one group fanning out over the whole portfolio."""
    markets = "".join(_market(i) for i in range(MARKETS))
    portfolio = "".join(_instrument(i) for i in range(INSTRUMENTS))
    group = (
        '<group name="price"><valuation name="bond" use="vn:link(/vnml/project/portfolio, instrument)" '
        'id="${requestId()}-${select(@name)}"><instrument select="."/>'
        "<market select=\"/vnml/project/market[@name=${select(@market)}]\"/>"
        '<model select="/vnml/project/model"/><calculator select="/vnml/project/calculator"/>'
        "<analytics><evaluation><date>$VALUATION_DATE</date></evaluation><price><amount/></price></analytics>"
        "</valuation></group>"
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<?vnvs $VALUATION_DATE = "2025-06-30" ?>\n'
        f'<vnml><project name="bench">{markets}<model name="HW1F"><meanReversion>0.03</meanReversion></model>'
        f'<calculator name="bond"/><portfolio>{portfolio}</portfolio>{group}</project></vnml>'
    ).encode()


def _rss_bytes() -> int:
    # ru_maxrss is KiB on Linux; it is the process peak, so growth is measured against the peak before.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _hydrate(data: bytes) -> tuple[float, int, int, int, int]:
    """(seconds, tasks, task XML bytes, RSS after parsing, RSS peak after hydrating)."""
    root = parse_xml(data)
    parsed_rss = _rss_bytes()
    engine = HydrationEngine(HydrationSettings(), "bench")
    started = time.perf_counter()
    engine.prepare(root)
    documents = engine.hydrate_group(root, 0)
    elapsed = time.perf_counter() - started
    return elapsed, len(documents), sum(len(d.xml) for d in documents), parsed_rss, _rss_bytes()


def run() -> dict[str, float]:
    """Time one run (and its RSS growth), then trace Python allocations in a second run."""
    data = build_request()
    started_rss = _rss_bytes()
    elapsed, tasks, task_bytes, parsed_rss, final_rss = _hydrate(data)
    # Parsing is the caller's (lxml holds several times the text size); growth past it is the engine's.
    rss_growth = max(final_rss - parsed_rss, 0)
    tracemalloc.start()
    _hydrate(data)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "input_bytes": float(len(data)),
        "seconds": elapsed,
        "tasks": float(tasks),
        "task_xml_bytes": float(task_bytes),
        "parse_rss_growth_bytes": float(max(parsed_rss - started_rss, 0)),
        "peak_rss_growth_bytes": float(rss_growth),
        "tracemalloc_peak_bytes": float(traced_peak),
        "rss_growth_vs_input": rss_growth / len(data),
        "rss_growth_with_parse_vs_input": max(final_rss - started_rss, 0) / len(data),
        "tracemalloc_peak_vs_input": traced_peak / len(data),
    }


def main() -> int:
    figures = run()
    for name, value in figures.items():
        print(f"{name:28s} {value:,.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
