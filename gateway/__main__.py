"""`vn-gateway` and `python -m gateway`: the REST gateway process."""

from __future__ import annotations

from gateway.server import build
from vncommon.service import run_service


def main() -> int:
    """Entry point of the `vn-gateway` console command."""
    return run_service(build, "gateway")


if __name__ == "__main__":
    raise SystemExit(main())
