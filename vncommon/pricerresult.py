"""What a pricer function may return, as result bytes: XML (bytes or str) or a number.

Shared by the in-process executor (threads and process pool) and the script helper (vncommon.scripthost),
so a pricer gets the same error for the same mistake however it is run.
"""

from __future__ import annotations

import math
from typing import Any


class BadReturn(ValueError):
    """The pricer returned something that is not a result; the message names what it returned."""


def as_result_bytes(value: Any) -> bytes:
    """`value` as the bytes an executor normalises (vnas.executors.result)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if isinstance(value, float) and not math.isfinite(value):
            raise BadReturn(f"returned {value!r}; a price must be a finite positive number")
        return repr(value).encode()
    raise BadReturn(f"returned {type(value).__name__}; expected XML (bytes or str) or a number")
