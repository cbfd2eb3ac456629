"""Hardened XML parsing: no DTDs, no entities, nothing outside the document, bounded depth and size.

Every document the mesh reads (requests, fetched hydration sources, task XML, script output, task
results) goes through `parse_xml`, so one place decides what is safe. A DOCTYPE is refused by our own
scan of the prolog *before* libxml2 sees the bytes: libxml2 may open a DOCTYPE's external subset while
it parses (lxml's `collect_ids=False` alone makes it do so), which once let `SYSTEM "file:///proc/self/fd/0"`
hang a service. The parser also gets a resolver that refuses every URL, in case anything else asks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, cast

from lxml import etree

from vncommon.errors import MalformedXml

MAX_NODES = 5_000_000
# libxml2 refuses elements nested deeper than this while huge_tree is off (the root is at depth 1).
MAX_DEPTH = 256
DOCTYPE_REFUSED = "declares a DOCTYPE, which is not allowed"
_POSITION_SUFFIX = re.compile(r",? line \d+, column \d+$")
# Encodings whose bytes for the ASCII range are ASCII, so our scan and libxml2 read the same markup.
_ASCII_COMPATIBLE = re.compile(r"(utf-?8|(us-?)?ascii|iso[-_]?8859[-_]\d{1,2}|latin-?\d{1,2}|(windows|cp)-?125\d)",
                               re.IGNORECASE)
_ENCODING_DECLARATION = re.compile(r"""\sencoding\s*=\s*["']([A-Za-z][A-Za-z0-9._\-]*)["']""")
# (leading bytes, codec, bytes to skip): byte order marks first, then XML's own detection without a BOM.
_SIGNATURES = (
    (b"\x00\x00\xfe\xff", "utf-32-be", 4), (b"\xff\xfe\x00\x00", "utf-32-le", 4),
    (b"\xef\xbb\xbf", "utf-8", 3), (b"\xfe\xff", "utf-16-be", 2), (b"\xff\xfe", "utf-16-le", 2),
    (b"\x00\x00\x00<", "utf-32-be", 0), (b"<\x00\x00\x00", "utf-32-le", 0),
    (b"\x00<\x00?", "utf-16-be", 0), (b"<\x00?\x00", "utf-16-le", 0),
)
# Byte patterns libxml2 would decode as EBCDIC or as UCS-4 in unusual byte orders: refused outright.
_REFUSED_SIGNATURES = (b"\x4c\x6f\xa7\x94", b"\x00\x00<\x00", b"\x00<\x00\x00")
_WHITESPACE = " \t\r\n"


@dataclass(frozen=True, slots=True)
class XmlLimits:
    max_nodes: int = MAX_NODES


class _ExternalRefused(Exception):
    """The parser asked for something outside the document."""


class _RefuseEverything(etree.Resolver):
    # lxml calls resolve(url, public_id, context); lxml-stubs omit the context argument.
    def resolve(self, system_url: str, public_id: str, context: Any) -> Any:  # type: ignore[override]
        raise _ExternalRefused(system_url)


def _parser_options() -> dict[str, Any]:
    # resolve_entities=False keeps &foo; unresolved; load_dtd/no_network stop any fetch; collect_ids keeps
    # its default (False sets a libxml2 flag that loads the external subset); huge_tree stays off so
    # libxml2's own depth and text-size guards apply.
    return {"resolve_entities": False, "load_dtd": False, "dtd_validation": False, "attribute_defaults": False,
            "no_network": True, "remove_blank_text": False, "huge_tree": False}


def _new_parser() -> etree.XMLParser:
    parser = etree.XMLParser(**_parser_options())
    parser.resolvers.add(_RefuseEverything())
    return parser


def new_pull_parser(events: tuple[str, ...], tag: str | None = None) -> etree.XMLPullParser:
    """A feed parser with the same hardening as `parse_xml`'s (the caller runs `check_prolog` first)."""
    parser = etree.XMLPullParser(events=cast(Any, events), tag=tag, **_parser_options())
    parser.resolvers.add(_RefuseEverything())
    return parser


def malformed(exc: Exception, what: str) -> MalformedXml:
    """The MalformedXml for what libxml2 (or the refusing resolver) raised while parsing."""
    if isinstance(exc, etree.XMLSyntaxError):
        line, column = exc.position if exc.position else (1, 1)
        message = _POSITION_SUFFIX.sub("", exc.msg)
        return MalformedXml(f"{what} is not well-formed XML: {message}", line, column)
    return MalformedXml(f"{what} refers to an external resource, which is not allowed", 1, 1)


def refuse_doctype(root: etree._Element, what: str) -> None:
    """A second guard after parsing; the prolog scan refuses these first."""
    if getattr(root.getroottree().docinfo, "doctype", ""):
        raise MalformedXml(f"{what} {DOCTYPE_REFUSED}", 1, 1)


def parse_xml(data: bytes, limits: XmlLimits = XmlLimits(), what: str = "document") -> etree._Element:
    """Parse `data`, refusing DOCTYPEs and oversized trees; errors carry line and column."""
    if not data.strip():
        raise MalformedXml(f"{what} is empty", 1, 1)
    check_prolog(data, what)
    try:
        root = etree.fromstring(data, _new_parser())
    except (etree.XMLSyntaxError, _ExternalRefused) as exc:
        raise malformed(exc, what) from None
    refuse_doctype(root, what)
    _check_shape(root, limits, what)
    return root


PARSE_ERRORS = (etree.XMLSyntaxError, _ExternalRefused)


def check_prolog(data: bytes, what: str = "document") -> tuple[str, int]:
    """Refuse a DOCTYPE, or an encoding our scan cannot read as libxml2 would, before anything is parsed.

    Walks the XML declaration, comments, processing instructions and whitespace before the root element
    on the raw bytes; anything else there is left to libxml2, which stops at it without loading anything.
    Returns the codec the scan read the bytes with and where the root element (presumably) starts.
    """
    if data.startswith(_REFUSED_SIGNATURES):
        raise MalformedXml(f"{what} is not in UTF-8, UTF-16, UTF-32 or an ASCII-compatible encoding", 1, 1)
    codec, start = next(((c, skip) for sig, c, skip in _SIGNATURES if data.startswith(sig)), ("latin-1", 0))
    scan = _Prolog(data, codec, start)
    _check_encoding(scan.declared_encoding(), codec, what)
    position = scan.skip_misc()
    if data.startswith("<!DOCTYPE".encode(codec), position):
        line, column = scan.line_column(position)
        raise MalformedXml(f"{what} {DOCTYPE_REFUSED}", line, column)
    return codec, position


def _check_encoding(declared: str | None, codec: str, what: str) -> None:
    if declared is None:
        return
    family = declared.lower().replace("_", "-")
    if codec.startswith("utf-16"):
        accepted = family in ("utf-16", "utf16", "ucs-2", "ucs2", codec)
    elif codec.startswith("utf-32"):
        accepted = family in ("utf-32", "utf32", "ucs-4", "ucs4", codec)
    else:
        accepted = _ASCII_COMPATIBLE.fullmatch(declared) is not None
    if not accepted:
        raise MalformedXml(
            f"{what} declares encoding {declared!r}, which is not accepted: use UTF-8, UTF-16, UTF-32, "
            "US-ASCII, ISO-8859-n or windows-125n (matching the document's bytes)", 1, 1)


class _Prolog:
    """A cursor over the raw bytes of a prolog, matching markup encoded as the document is."""

    def __init__(self, data: bytes, codec: str, start: int) -> None:
        self.data = data
        self.codec = codec
        self.start = start
        self.width = len("<".encode(codec))
        self.pos = start
        self._spaces = {c.encode(codec) for c in _WHITESPACE}

    def _find(self, marker: str, start: int) -> int:
        """Index of `marker` at a character boundary at or after `start`, or -1."""
        encoded = marker.encode(self.codec)
        found = self.data.find(encoded, start)
        while found != -1 and (found - self.start) % self.width:
            found = self.data.find(encoded, found + 1)
        return found

    def _at(self, marker: str) -> bool:
        return self.data.startswith(marker.encode(self.codec), self.pos)

    def declared_encoding(self) -> str | None:
        """The encoding named by the XML declaration, if there is one."""
        if not self._at("<?xml"):
            return None
        end = self._find("?>", self.pos)
        if end == -1:
            return None
        declaration = self.data[self.pos : end].decode(self.codec, errors="replace")
        match = _ENCODING_DECLARATION.search(declaration)
        return match.group(1) if match else None

    def skip_misc(self) -> int:
        """Position after the declaration, comments, PIs and whitespace before the root (or a DOCTYPE)."""
        while self.pos < len(self.data):
            if self.data[self.pos : self.pos + self.width] in self._spaces:
                self.pos += self.width
                continue
            if self._at("<!--"):
                closer = "-->"
            elif self._at("<?"):
                closer = "?>"
            else:
                return self.pos
            end = self._find(closer, self.pos + 2 * self.width)
            if end == -1:
                return len(self.data)  # unterminated: libxml2 reports it
            self.pos = end + len(closer) * self.width
        return self.pos

    def line_column(self, position: int) -> tuple[int, int]:
        before = self.data[self.start : position].decode(self.codec, errors="replace")
        return before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1


def _check_shape(root: etree._Element, limits: XmlLimits, what: str) -> None:
    # libxml2 itself refuses nesting deeper than MAX_DEPTH while huge_tree is off; the node count is ours.
    for nodes, element in enumerate(root.iter(), start=1):
        if nodes > limits.max_nodes:
            line = element.sourceline if isinstance(element.sourceline, int) else 1
            raise MalformedXml(f"{what} has more than {limits.max_nodes} nodes", line, 1)


def serialize(element: etree._Element) -> bytes:
    """Serialise with an XML declaration in UTF-8, the one form the mesh writes."""
    return etree.tostring(element, xml_declaration=True, encoding="UTF-8")
