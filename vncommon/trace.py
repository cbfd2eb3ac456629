"""The trace id of a request, resolved by one rule wherever it enters the mesh (gateway and vnapi).

The id travels in the `trace_id` field of each call and stream entry, never in call metadata, so a
server reads it from one place.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

TRACE_HEADER = "X-Trace-Id"
MAX_TRACE_ID_CHARS = 128


def is_usable(value: str) -> bool:
    """1-128 visible ASCII characters: safe in a header, a log line and a Redis field."""
    return 0 < len(value) <= MAX_TRACE_ID_CHARS and all("!" <= ch <= "~" for ch in value)


def resolve_trace_id(*candidates: str) -> str:
    """The first usable candidate (surrounding blanks dropped), else a fresh id."""
    for candidate in candidates:
        value = candidate.strip()
        if is_usable(value):
            return value
    return uuid.uuid4().hex


def from_metadata(metadata: Mapping[str, str]) -> str:
    """The X-Trace-Id entry of a request's kept headers, whatever its case; empty when there is none."""
    wanted = TRACE_HEADER.lower()
    return next((value for name, value in metadata.items() if name.lower() == wanted), "")
