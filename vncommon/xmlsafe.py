"""Hardened XML parsing: no DTDs, no entities, no network, bounded depth and size.

Every document the mesh reads (requests, fetched hydration sources, task results) goes through
`parse_xml`, so one place decides what is safe.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from lxml import etree

from vncommon.errors import MalformedXml

MAX_NODES = 5_000_000
_POSITION_SUFFIX = re.compile(r",? line \d+, column \d+$")


@dataclass(frozen=True, slots=True)
class XmlLimits:
    max_nodes: int = MAX_NODES


def _new_parser() -> etree.XMLParser:
    # resolve_entities=False keeps &foo; unresolved; load_dtd/no_network stop any fetch;
    # huge_tree stays off so libxml2's own depth and text-size guards apply.
    return etree.XMLParser(
        resolve_entities=False,
        load_dtd=False,
        dtd_validation=False,
        no_network=True,
        remove_blank_text=False,
        huge_tree=False,
        collect_ids=False,
    )


def parse_xml(data: bytes, limits: XmlLimits = XmlLimits(), what: str = "document") -> etree._Element:
    """Parse `data`, refusing DOCTYPEs and oversized trees; errors carry line and column."""
    if not data.strip():
        raise MalformedXml(f"{what} is empty", 1, 1)
    try:
        root = etree.fromstring(data, _new_parser())
    except etree.XMLSyntaxError as exc:
        line, column = exc.position if exc.position else (1, 1)
        message = _POSITION_SUFFIX.sub("", exc.msg)
        raise MalformedXml(f"{what} is not well-formed XML: {message}", line, column) from None
    tree = root.getroottree()
    if tree.docinfo.doctype:  # type: ignore[union-attr]
        raise MalformedXml(f"{what} declares a DOCTYPE, which is not allowed", 1, 1)
    _check_shape(root, limits, what)
    return root


def _check_shape(root: etree._Element, limits: XmlLimits, what: str) -> None:
    # libxml2 itself refuses nesting deeper than 256 while huge_tree is off; the node count is ours.
    for nodes, element in enumerate(root.iter(), start=1):
        if nodes > limits.max_nodes:
            line = element.sourceline if isinstance(element.sourceline, int) else 1
            raise MalformedXml(f"{what} has more than {limits.max_nodes} nodes", line, 1)


def serialize(element: etree._Element) -> bytes:
    """Serialise with an XML declaration in UTF-8, the one form the mesh writes."""
    return etree.tostring(element, xml_declaration=True, encoding="UTF-8")
