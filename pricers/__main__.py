"""`python -m pricers TASK.xml`: value any product as a one-shot script."""

from __future__ import annotations

import sys

from pricers.cli import price_any

sys.exit(price_any())
