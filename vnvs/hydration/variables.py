"""Variables: `<?vnvs $NAME = "value" ?>` declarations and `$NAME` substitution in text and attributes.

Declared values are resolved once, when they are collected: a value naming other variables gets theirs,
and a variable that reaches itself is an error. Substitution is therefore idempotent (a substituted value
holds no declared `$NAME` of its own), so the passes that run it again on new content cannot double a
text each time, and what it adds is charged to the pass's output budget as it is produced.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from lxml import etree

from vnvs.hydration.budget import OutputBudget
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


def collect(root: etree._Element, scope: Scope, budget: OutputBudget) -> dict[str, str]:
    """Variables declared in the document, resolved; a malformed declaration or a cycle is a HydrationError."""
    declared: dict[str, str] = {}
    places: dict[str, etree._Element | None] = {}
    for pi in _document_pis(root):
        if pi.target != PI_TARGET:
            continue
        text = pi.text or ""
        match = _DECLARATION.fullmatch(text)
        if match is None:
            raise scope.error("malformed variable declaration", text.strip(), pi.getparent())
        declared[match.group(1)] = match.group(2) if match.group(2) is not None else match.group(3)
        places[match.group(1)] = pi.getparent()
    resolved: dict[str, str] = {}
    for name in declared:
        _resolve(name, declared, resolved, (), scope, budget, places)
    return resolved


def _resolve(name: str, declared: dict[str, str], resolved: dict[str, str], chain: tuple[str, ...],
             scope: Scope, budget: OutputBudget, places: dict[str, etree._Element | None]) -> str:
    done = resolved.get(name)
    if done is not None:
        return done
    if name in chain:
        path = " -> ".join(f"${step}" for step in (*chain[chain.index(name):], name))
        raise scope.error(f"variable ${name} refers to itself ({path})", declared[name], places[name])

    def value_of(match: re.Match[str]) -> str:
        token = match.group(1)
        if token not in declared:
            return match.group(0)
        value = _resolve(token, declared, resolved, (*chain, name), scope, budget, places)
        budget.spend_bytes(len(value), scope, declared[name], places[name])
        return value

    resolved[name] = _TOKEN.sub(value_of, declared[name])
    return resolved[name]


def substitute_text(value: str, variables: dict[str, str], budget: OutputBudget, scope: Scope,
                    at: etree._Element) -> str:
    """`value` with every declared `$NAME` replaced (each charged as it is made); unknown tokens stay."""
    if "$" not in value or not variables:
        return value

    def value_of(match: re.Match[str]) -> str:
        found = variables.get(match.group(1))
        if found is None:
            return match.group(0)
        budget.spend_bytes(len(found), scope, match.group(0), at)
        return found

    return _TOKEN.sub(value_of, value)


# Elements holding a `$` in an attribute or a text node of their own (their text or a child's tail):
# found by libxml2, so passes over big clones do not walk every node in Python.
_HOLDERS = etree.XPath("descendant-or-self::*[@*[contains(., '$')] or text()[contains(., '$')]]")


def apply(element: etree._Element, variables: dict[str, str], budget: OutputBudget, scope: Scope) -> bool:
    """Substitute variables in `element`'s subtree (text, tails inside it, attributes); True if changed."""
    if not variables:
        return False
    holders = [node for node in _HOLDERS(element) if isinstance(node, etree._Element)]  # type: ignore[union-attr]
    return apply_nodes(holders, variables, budget, scope)


def apply_nodes(nodes: list[etree._Element], variables: dict[str, str], budget: OutputBudget, scope: Scope) -> bool:
    """Substitute variables in the attributes and own text nodes of `nodes` only; True if changed."""
    changed = False
    for node in nodes:
        if not variables:
            break
        for name, raw in node.attrib.items():
            value = str(raw)
            new = substitute_text(value, variables, budget, scope, node)
            if new != value:
                node.set(name, new)
                changed = True
        changed |= _substitute_texts(node, variables, budget, scope)
    return changed


def _substitute_texts(node: etree._Element, variables: dict[str, str], budget: OutputBudget, scope: Scope) -> bool:
    changed = False
    if node.text and "$" in node.text:
        new = substitute_text(node.text, variables, budget, scope, node)
        changed |= new != node.text
        node.text = new
    for child in node:
        if child.tail and "$" in child.tail:
            new = substitute_text(child.tail, variables, budget, scope, node)
            changed |= new != child.tail
            child.tail = new
    return changed
