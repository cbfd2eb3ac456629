"""Checks a submission must pass before anything is stored (SPEC sections 4, 7 and 10).

The order matters: cheap checks first (size, content type, key), then parsing, then the VNML shape,
so that an oversized body is never parsed. The VNML shape is `vncommon.vnml`'s, the same one vnvs runs,
checked in one streaming pass (`vncommon.vnmlscan`) that keeps no tree of the document.
"""

from __future__ import annotations

from vncommon.errors import EmptyBody, InvalidArgument, PayloadTooLarge, UnsupportedMediaType
from vncommon.vnmlscan import check_request

ALLOWED_CONTENT_TYPES = frozenset({"application/xml", "text/xml"})
DEFAULT_CONTENT_TYPE = "application/xml"
MAX_IDEMPOTENCY_KEY_CHARS = 255


def check_submission(xml: bytes, content_type: str, idempotency_key: str, max_bytes: int) -> int:
    """Raise the VnError for the first problem found; return the number of groups as written."""
    if not xml.strip():
        raise EmptyBody("the request body is empty")
    if len(xml) > max_bytes:
        raise PayloadTooLarge(
            f"the request body has {len(xml)} bytes, more than the limit of {max_bytes}",
            {"limit": str(max_bytes), "size": str(len(xml))},
        )
    normalise_content_type(content_type)
    check_idempotency_key(idempotency_key)
    return check_request(xml, what="request")


def normalise_content_type(content_type: str) -> str:
    """The media type without parameters, lower case; empty means application/xml."""
    media_type = content_type.split(";", 1)[0].strip().lower() or DEFAULT_CONTENT_TYPE
    if media_type not in ALLOWED_CONTENT_TYPES:
        raise UnsupportedMediaType(
            f"content type {content_type!r} is not supported; use application/xml or text/xml",
            {"contentType": content_type},
        )
    return media_type


def check_idempotency_key(key: str) -> None:
    if len(key) > MAX_IDEMPOTENCY_KEY_CHARS:
        raise InvalidArgument(
            f"the idempotency key has {len(key)} characters, more than {MAX_IDEMPOTENCY_KEY_CHARS}",
            {"field": "idempotency_key", "limit": str(MAX_IDEMPOTENCY_KEY_CHARS)},
        )
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in key):
        raise InvalidArgument("the idempotency key contains control characters", {"field": "idempotency_key"})
