"""Variables: `<?vnvs $NAME = "value" ?>` declarations and `$NAME` substitution in text and attributes."""

from __future__ import annotations

import re
from collections.abc import Iterator

from lxml import etree

from vnvs.hydration.errors import Scope

PI_TARGET = "vnvs"
_DECLARATION = re.compile(r"""\s*\$([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(?:"([^"]*)"|'([^']*)')\s*""")
_TOKEN = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")


def _document_pis(root: etree._Element) -> Iterator[etree._ProcessingInstruction]:
    # Declarations may sit before the root element, inside it, or after it; document order matters
    # because a later declaration wins. lxml never yields PIs from comments or CDATA, which is what
    # keeps those from counting as declarations.
    before = list(root.itersiblings(preceding=True))
    for node in reversed(before):
        if isinstance(node, etree._ProcessingInstruction):
            yield node
    yield from root.iter(etree.ProcessingInstruction)  # type: ignore[misc]
    for node in root.itersiblings():
        if isinstance(node, etree._ProcessingInstruction):
            yield node


def collect(root: etree._Element, scope: Scope) -> dict[str, str]:
    """Variables declared in the document; a malformed vnvs declaration is a HydrationError."""
    variables: dict[str, str] = {}
    for pi in _document_pis(root):
        if pi.target != PI_TARGET:
            continue
        text = pi.text or ""
        match = _DECLARATION.fullmatch(text)
        if match is None:
            parent = pi.getparent()
            raise scope.error("malformed variable declaration", text.strip(), parent)
        variables[match.group(1)] = match.group(2) if match.group(2) is not None else match.group(3)
    return variables


def substitute_text(value: str, variables: dict[str, str]) -> str:
    """`value` with every declared `$NAME` replaced; unknown tokens stay as they are."""
    if "$" not in value or not variables:
        return value
    return _TOKEN.sub(lambda m: variables.get(m.group(1), m.group(0)), value)


# Elements holding a `$` in an attribute or a text node of their own (their text or a child's tail):
# found by libxml2, so passes over big clones do not walk every node in Python.
_HOLDERS = etree.XPath("descendant-or-self::*[@*[contains(., '$')] or text()[contains(., '$')]]")


def apply(element: etree._Element, variables: dict[str, str]) -> bool:
    """Substitute variables in `element`'s subtree (text, tails inside it, attributes); True if changed."""
    if not variables:
        return False
    holders = [node for node in _HOLDERS(element) if isinstance(node, etree._Element)]  # type: ignore[union-attr]
    return apply_nodes(holders, variables)


def apply_nodes(nodes: list[etree._Element], variables: dict[str, str]) -> bool:
    """Substitute variables in the attributes and own text nodes of `nodes` only; True if changed."""
    changed = False
    for node in nodes:
        if not variables:
            break
        for name, raw in node.attrib.items():
            value = str(raw)
            new = substitute_text(value, variables)
            if new != value:
                node.set(name, new)
                changed = True
        changed |= _substitute_texts(node, variables)
    return changed


def _substitute_texts(node: etree._Element, variables: dict[str, str]) -> bool:
    changed = False
    if node.text and "$" in node.text:
        new = substitute_text(node.text, variables)
        changed |= new != node.text
        node.text = new
    for child in node:
        if child.tail and "$" in child.tail:
            new = substitute_text(child.tail, variables)
            changed |= new != child.tail
            child.tail = new
    return changed
