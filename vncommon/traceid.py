"""What a trace id may be: 1-128 characters from A-Z a-z 0-9 . _ : - (UUIDs, W3C trace ids, `svc:1234`).

A trace id goes into every log line, Redis hash and gRPC metadata of a request, so a hostile one (a
megabyte, a newline that forges a log line, bytes that are not text) is refused where it enters: the
gateway's X-Trace-Id header and the `trace_id` of Submit and Orchestrate.
"""

from __future__ import annotations

import re

from vncommon.errors import InvalidArgument

MAX_TRACE_ID_CHARS = 128
TRACE_ID_CHARACTERS = "A-Za-z0-9._:-"
# The rule as a JSON-schema pattern for a field or header that may be empty (absent: one is generated);
# the gateway's OpenAPI document publishes it.
TRACE_ID_PATTERN = f"^[{TRACE_ID_CHARACTERS}]{{0,{MAX_TRACE_ID_CHARS}}}$"
_TRACE_ID = re.compile(f"[{TRACE_ID_CHARACTERS}]{{1,{MAX_TRACE_ID_CHARS}}}")


def validate_trace_id(value: str, what: str = "trace_id") -> str:
    """`value` when it is a valid trace id, "" when it is empty (absent: the caller generates one);
    InvalidArgument naming `what` and the rule otherwise. The value itself is not echoed: it may be huge
    or hostile."""
    if not value or _TRACE_ID.fullmatch(value):
        return value
    raise InvalidArgument(
        f"{what} must be 1-{MAX_TRACE_ID_CHARS} characters from A-Z a-z 0-9 . _ : - "
        f"(the one sent has {len(value)} characters); send a valid one or none, and one is generated",
        {"field": what, "limit": str(MAX_TRACE_ID_CHARS)},
    )
