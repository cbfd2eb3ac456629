"""`vnas` and `python -m vnas`: a stateless task worker (settings from the environment, SPEC section 12)."""

from __future__ import annotations

from vnas.server import build
from vncommon.service import run_service


def main() -> int:
    return run_service(build, "vnas")


if __name__ == "__main__":
    raise SystemExit(main())
