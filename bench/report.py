"""How every benchmark entry point reports: the figures as a table, and all of them in a JSON file."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def report(results: dict[str, dict[str, Any]], prefix: str, decimals: int = 2) -> Path:
    """Print each scenario's figures and write them, with the machine, to bench/results/<prefix>-<time>.json."""
    for name, figures in results.items():
        print(f"\n{name}")
        for key, value in figures.items():
            print(f"  {key:32} {value:14.{decimals}f}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{prefix}-{time.strftime('%Y%m%dT%H%M%S')}.json"
    out.write_text(json.dumps({"machine": platform.uname()._asdict(), "results": results}, indent=2))
    print(f"\nwritten to {out}")
    return out
