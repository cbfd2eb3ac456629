"""Checks a submission must pass before anything is stored (SPEC sections 4, 7 and 10).

The order matters: cheap checks first (size, content type, key), then parsing, then the VNML shape,
so that an oversized body is never parsed.
"""

from __future__ import annotations

from lxml import etree

from vncommon.errors import EmptyBody, InvalidArgument, InvalidVnml, PayloadTooLarge, UnsupportedMediaType
from vncommon.xmlsafe import parse_xml

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
    return count_groups(parse_xml(xml, what="request"))


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


def count_groups(root: etree._Element) -> int:
    """Check the VNML shape: root vnml, one project, groups each holding at least one valuation."""
    if _local_name(root) != "vnml":
        raise _invalid(root, f"the root element is <{_local_name(root)}>, expected <vnml>")
    projects = _children(root, "project")
    if len(projects) != 1:
        raise _invalid(root, f"<vnml> must hold exactly one <project>, found {len(projects)}")
    project = projects[0]
    groups = _children(project, "group")
    if not groups:
        raise _invalid(project, "the <project> holds no <group>")
    for position, group in enumerate(groups, start=1):
        if not _children(group, "valuation"):
            name = group.get("name", "")
            label = f" {name!r}" if name else ""
            raise _invalid(group, f"group {position}{label} holds no <valuation>")
    return len(groups)


def _children(parent: etree._Element, name: str) -> list[etree._Element]:
    # Comments and processing instructions have a non-string tag; they are not elements of the model.
    return [child for child in parent if isinstance(child.tag, str) and _local_name(child) == name]


def _local_name(element: etree._Element) -> str:
    return str(etree.QName(element).localname)


def _invalid(element: etree._Element, message: str) -> InvalidVnml:
    line = element.sourceline or 1
    path = element.getroottree().getpath(element)
    return InvalidVnml(f"{message} (line {line})", {"line": str(line), "element": path})
