"""Checks on an incoming POST /valuation before anything reaches vnapi: query, headers, body size."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web
from multidict import CIMultiDictProxy

from vncommon.errors import EmptyBody, InvalidArgument, PayloadTooLarge, UnsupportedMediaType

XML_CONTENT_TYPES = frozenset({"application/xml", "text/xml"})
MAX_IDEMPOTENCY_KEY_CHARS = 255
READ_CHUNK_BYTES = 64 * 1024
IDEMPOTENCY_HEADER = "Idempotency-Key"


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
