"""`vnvs` and `python -m vnvs`: the orchestrator process."""

from __future__ import annotations

from vncommon.service import run_service
from vnvs.server import build


def main() -> int:
    return run_service(build, "vnvs")


if __name__ == "__main__":
    raise SystemExit(main())
