"""Checks on incoming requests before anything reaches vnapi: headers on every route; query, content type
and body size of POST /valuation."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web
from multidict import CIMultiDictProxy

from gateway.errors import BearerRejected
from vn.v1 import valuation_pb2
from vncommon.errors import EmptyBody, InvalidArgument, PayloadTooLarge, UnsupportedMediaType
from vncommon.state import parse_priority, priority_to_proto
from vncommon.trace import TRACE_HEADER, fresh_trace_id, validate_trace_id
from vncommon.tracing import TRACEPARENT, w3c_trace_id

XML_CONTENT_TYPES = frozenset({"application/xml", "text/xml"})
MAX_IDEMPOTENCY_KEY_CHARS = 255
READ_CHUNK_BYTES = 64 * 1024
IDEMPOTENCY_HEADER = "Idempotency-Key"
AUTHORIZATION_HEADER = "Authorization"
PRIORITY_HEADER = "X-Priority"
DEADLINE_HEADER = "X-Deadline-Ms"
MAX_DEADLINE_DIGITS = 12


def parse_sync(query: Mapping[str, str]) -> bool:
    """`sync=Y|N`, case-insensitive, N when absent; anything else is a 400."""
    raw = query.get("sync", "N")
    value = raw.strip().upper()
    if value not in ("Y", "N"):
        raise InvalidArgument(f"sync must be Y or N, not {raw[:20]!r}")
    return value == "Y"


def xml_content_type(request: web.Request) -> str:
    """The body's media type (parameters such as charset dropped); 415 unless it is an XML type."""
    if "Content-Type" not in request.headers or request.content_type not in XML_CONTENT_TYPES:
        declared = request.headers.get("Content-Type", "none")[:100]
        raise UnsupportedMediaType(f"Content-Type must be application/xml or text/xml, not {declared}")
    return request.content_type


def idempotency_key(headers: CIMultiDictProxy[str]) -> str | None:
    key = headers.get(IDEMPOTENCY_HEADER, "").strip()
    if len(key) > MAX_IDEMPOTENCY_KEY_CHARS:
        raise InvalidArgument(f"{IDEMPOTENCY_HEADER} must be at most {MAX_IDEMPOTENCY_KEY_CHARS} characters")
    return key or None


def priority(headers: CIMultiDictProxy[str]) -> valuation_pb2.Priority:
    """X-Priority: high, normal or batch (any case); normal when absent; anything else (empty too) is a 400."""
    if PRIORITY_HEADER not in headers:
        return valuation_pb2.PRIORITY_UNSPECIFIED
    raw = headers[PRIORITY_HEADER].strip()
    try:
        return priority_to_proto(parse_priority(raw))
    except ValueError as exc:
        raise InvalidArgument(f"{PRIORITY_HEADER}: {exc}", {"header": PRIORITY_HEADER}) from None


def deadline_ms(headers: CIMultiDictProxy[str]) -> int:
    """X-Deadline-Ms: a positive whole number of milliseconds; absent means none (vnapi checks the upper bound)."""
    if DEADLINE_HEADER not in headers:
        return 0
    raw = headers[DEADLINE_HEADER].strip()
    if not raw.isascii() or not raw.isdigit() or len(raw) > MAX_DEADLINE_DIGITS or int(raw) == 0:
        raise InvalidArgument(f"{DEADLINE_HEADER} must be a positive whole number of milliseconds, not {raw[:20]!r}",
                              {"header": DEADLINE_HEADER})
    return int(raw)


def forwarded_metadata(headers: CIMultiDictProxy[str]) -> dict[str, str]:
    """Every X-* header, named as the client sent it; repeated headers are joined with ", "."""
    metadata: dict[str, str] = {}
    lowered: dict[str, str] = {}
    for name, value in headers.items():
        if not name.lower().startswith("x-"):
            continue
        first = lowered.setdefault(name.lower(), name)
        metadata[first] = f"{metadata[first]}, {value}" if first in metadata else value
    return metadata


def _is_text(value: str) -> bool:
    # aiohttp decodes header bytes that are not UTF-8 to lone surrogates, which nothing further on can
    # encode (protobuf strings, gRPC metadata, token comparison).
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_headers(headers: CIMultiDictProxy[str]) -> None:
    """Every header the gateway reads or forwards must be UTF-8: Authorization (else 401), Idempotency-Key
    and X-* (else 400); X-Trace-Id must be a valid trace id (400)."""
    for name, value in headers.items():
        lowered = name.lower()
        if _is_text(value):
            continue
        if lowered == AUTHORIZATION_HEADER.lower():
            raise BearerRejected(f"the {AUTHORIZATION_HEADER} header is not valid UTF-8; send 'Bearer <token>'")
        if lowered == IDEMPOTENCY_HEADER.lower() or lowered.startswith("x-"):
            raise InvalidArgument(f"the {name} header is not valid UTF-8", {"header": name})
    validate_trace_id(headers.get(TRACE_HEADER, "").strip(), what=TRACE_HEADER)


def trace_id(headers: CIMultiDictProxy[str]) -> str:
    """The caller's X-Trace-Id when valid, else the trace id of its W3C `traceparent` (so the mesh's
    spans join the caller's trace under one id); a fresh one otherwise (`check_headers` refuses an
    invalid X-Trace-Id, and its answer carries the fresh id)."""
    try:
        return (validate_trace_id(headers.get(TRACE_HEADER, "").strip())
                or w3c_trace_id(headers.get(TRACEPARENT, "")) or fresh_trace_id())
    except InvalidArgument:
        return fresh_trace_id()


async def read_body(request: web.Request, limit: int) -> bytes:
    """The whole body, refusing with 413 as soon as it is known to exceed `limit` bytes.

    A declared Content-Length is checked before reading; a chunked body is counted while it arrives, so
    an oversized upload is never held in memory beyond the limit.
    """
    declared = request.content_length
    if declared is not None and declared > limit:
        raise PayloadTooLarge(f"body of {declared} bytes exceeds the limit of {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(READ_CHUNK_BYTES):
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    if not body.strip():
        raise EmptyBody("request body is empty")
    return body
