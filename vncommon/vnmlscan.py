"""Checking a submitted request in one streaming pass, without keeping a tree of it (vnapi's Submit).

The document is fed to the hardened parser (`vncommon.xmlsafe`: the prolog scan refuses a DOCTYPE
before libxml2 sees a byte; no DTD, no entities, no network; libxml2's depth and text guards) a chunk at
a time. After each chunk, what the shape rules of `vncommon.vnml` cannot read is dropped: only the
skeleton stays, that is the root's children, the project's children and each group's children, emptied
of their content. `vnml.count_groups` then runs on that skeleton, so a submission is judged by the very
function vnvs runs, with the same messages, lines and element paths, while memory stays at about one
chunk's tree whatever the document's size.

The node limit (`XmlLimits.max_nodes`) is checked on the bytes when they can only hold fewer nodes than
it (every node starts with `<`), and otherwise by counting the parser's events.
"""

from __future__ import annotations

import re
from typing import Any, cast

from lxml import etree

from vncommon import vnml
from vncommon.errors import MalformedXml
from vncommon.xmlsafe import PARSE_ERRORS, XmlLimits, check_prolog, malformed, new_pull_parser, refuse_doctype

CHUNK_BYTES = 64 * 1024
DEFAULT_LIMITS = XmlLimits()
# The element whose children the shape rules read, by depth (1 = the root, read whatever its name).
_CONTAINERS = {2: vnml.PROJECT, 3: vnml.GROUP}
_ROOT_NAME = re.compile(rb"<(?:[A-Za-z_][\w.\-]*:)?([A-Za-z_][\w.\-]*)")
_ASCII_COMPATIBLE = ("latin-1", "utf-8")


class _Skeleton:
    """Drops, from a tree being parsed, what `vnml.count_groups` never reads."""

    def __init__(self) -> None:
        self._pruned: dict[etree._Element, int] = {}  # container -> its children already pruned

    def prune(self, root: etree._Element) -> None:
        """Walk the open path (the chain of last children) and shrink every finished part beside it."""
        element, depth, container = root, 1, True
        while (count := len(element)) > 0:
            last = element[-1]
            if not container:
                if count > 1:
                    del element[:-1]  # content of a leaf of the skeleton: nothing in it is read
            else:
                for child in element[self._pruned.get(element, 0):count - 1]:  # type: ignore[index]  # lxml slices
                    self._finish(child, depth + 1)
                self._pruned[element] = count - 1
            container = container and _is_container(last, depth + 1)
            element, depth = last, depth + 1

    def _finish(self, element: etree._Element, depth: int) -> None:
        """A finished child of a container: a container keeps its (emptied) children, a leaf is emptied."""
        if not _is_container(element, depth):
            element.clear()
            return
        for child in element[self._pruned.pop(element, 0):]:  # type: ignore[index]
            self._finish(child, depth + 1)


def _is_container(element: etree._Element, depth: int) -> bool:
    name = _CONTAINERS.get(depth)
    return name is not None and vnml.is_named(element, name)


def check_request(data: bytes, limits: XmlLimits = DEFAULT_LIMITS, what: str = "request") -> int:
    """Check `data` as `vnml.count_groups(parse_xml(data))` would, holding no tree; the group count."""
    if not data.strip():
        raise MalformedXml(f"{what} is empty", 1, 1)
    codec, start = check_prolog(data, what)
    root_name = _ROOT_NAME.match(data, start) if codec in _ASCII_COMPATIBLE else None
    bounded = codec in _ASCII_COMPATIBLE and data.count(b"<") - data.count(b"</") <= limits.max_nodes
    if bounded and root_name is not None:
        # Only the root's start event is wanted (to reach the tree while it grows): filtered in libxml2.
        parser = new_pull_parser(("start",), "{*}" + root_name.group(1).decode("ascii"))
    else:
        parser = new_pull_parser(("start", "comment", "pi"))
    skeleton = _Skeleton()
    etree.clear_error_log()  # this thread's log: its first error is then this document's (see _first_error)
    root: etree._Element | None = None
    nodes = 0
    try:
        for offset in range(0, len(data), CHUNK_BYTES):
            parser.feed(data[offset:offset + CHUNK_BYTES])
            for _, node in parser.read_events():
                nodes += 1
                if root is None and isinstance(node, etree._Element) and isinstance(node.tag, str):
                    root = node
            if not bounded and nodes > limits.max_nodes:
                raise MalformedXml(f"{what} has more than {limits.max_nodes} nodes", 1, 1)
            if root is not None:
                skeleton.prune(root)
        root = parser.close()
    except PARSE_ERRORS as exc:
        raise _first_error(exc, what) from None
    refuse_doctype(root, what)
    return vnml.count_groups(root)


def _first_error(exc: Exception, what: str) -> MalformedXml:
    """The first error libxml2 met: a feed parser may report a later symptom ("no element found")."""
    log: list[Any] = list(cast(Any, exc.error_log)) if isinstance(exc, etree.XMLSyntaxError) else []
    errors = [entry for entry in log if entry.level >= etree.ErrorLevels.ERROR]
    if errors:
        first = errors[0]
        return MalformedXml(f"{what} is not well-formed XML: {first.message}", first.line or 1, first.column or 1)
    return malformed(exc, what)
