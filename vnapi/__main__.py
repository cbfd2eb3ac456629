"""`vnapi` console command and `python -m vnapi`: the intake service of the valuation mesh."""

from __future__ import annotations

import sys

from vnapi.server import build
from vncommon.service import run_service


def main() -> int:
    return run_service(build, "vnapi")


if __name__ == "__main__":
    sys.exit(main())
