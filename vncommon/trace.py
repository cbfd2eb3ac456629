"""The trace id of a request: what it may be, and the one rule that picks it where it enters the mesh.

A trace id goes into every log line, Redis hash and stream entry of a request, so a hostile one (a
megabyte, a newline that forges a log line, bytes that are not text) is refused where it enters: the
gateway's X-Trace-Id header and the `trace_id` of Submit and Orchestrate. It travels in the `trace_id`
field of each call and stream entry, never in call metadata, so a server reads it from one place.
(OpenTelemetry's W3C `traceparent`, which `vncommon.tracing` derives from it and sends in metadata and
stream fields, is a span link, not this id.)
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping

from vncommon.errors import InvalidArgument

TRACE_HEADER = "X-Trace-Id"
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


def resolve_trace_id(*candidates: str) -> str:
    """The first non-empty candidate (surrounding blanks dropped), each checked with `validate_trace_id`
    (an invalid one is refused, not skipped); a fresh id when all are empty."""
    for candidate in candidates:
        value = validate_trace_id(candidate.strip())
        if value:
            return value
    return fresh_trace_id()


def fresh_trace_id() -> str:
    """A new trace id for a request that came without one: 128 random bits as 32 hex digits, so it is
    also its W3C trace id (vncommon.tracing). Not a UUID4: its fixed version and variant bits sit where
    ratio samplers read, and would keep all traces or none."""
    return secrets.token_hex(16)


def from_metadata(metadata: Mapping[str, str]) -> str:
    """The X-Trace-Id entry of a request's kept headers, whatever its case; empty when there is none."""
    wanted = TRACE_HEADER.lower()
    return next((value for name, value in metadata.items() if name.lower() == wanted), "")
