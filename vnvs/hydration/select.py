"""The select strategy: find exactly one node (alternatives, `.`, relative, absolute, vn:link) and merge it."""

from __future__ import annotations

import copy
from typing import Any

from lxml import etree

from vnvs.hydration.budget import OutputBudget
from vnvs.hydration.errors import Scope
from vnvs.hydration.merge import merge
from vnvs.hydration.xpaths import Evaluator, is_element, parse_link, split_top_level, string_value


def _count(results: list[Any]) -> str:
    return "no node" if not results else f"{len(results)} nodes"


class Finder:
    """Evaluates select expressions to the single node they must find."""

    def __init__(self, evaluator: Evaluator) -> None:
        self.evaluator = evaluator

    def link(self, source: str, child: str, context: etree._Element, scope: Scope, at: etree._Element,
             limit: int) -> list[Any]:
        """Every `child` of every node that `source` finds, in document order of the sources.

        Stops as soon as it holds more than `limit` nodes: the caller refuses that many anyway, and
        `vn:link(//*, //*)` over n nodes would otherwise build an n-squared list first.
        """
        found: list[Any] = []
        for node in self.evaluator.evaluate(source, context, scope, at):
            if not is_element(node):
                raise scope.error("vn:link source must find elements", f"vn:link({source}, {child})", at)
            found.extend(self.evaluator.evaluate(child, node, scope, at))
            if len(found) > limit:
                del found[limit + 1 :]
                break
        return found

    def single(self, expression: str, context: etree._Element, scope: Scope, at: etree._Element) -> tuple[Any, bool]:
        """(the one node found, whether it came from vn:link); a HydrationError when none or several."""
        if not expression.strip():
            raise scope.error("empty select expression", expression, at)
        try:
            link = parse_link(expression)
        except ValueError as exc:
            raise scope.error(f"wrong argument count ({exc})", expression, at) from None
        if link is not None:
            results = self.link(link[0], link[1], context, scope, at, limit=1)
            if len(results) != 1:
                found = "no node" if not results else "more than one node"
                raise scope.error(f"select found {found}, expected exactly one", expression, at)
            return results[0], True
        counts: list[str] = []
        for alternative in split_top_level(expression, "|"):
            results = self.evaluator.evaluate(alternative.strip(), context, scope, at)
            if len(results) == 1:
                return results[0], False
            counts.append(_count(results))
        if len(counts) == 1:
            raise scope.error(f"select found {counts[0]}, expected exactly one", expression, at)
        detail = "; ".join(f"alternative {i} found {c}" for i, c in enumerate(counts, 1))
        raise scope.error(f"no alternative found exactly one node ({detail})", expression, at)

    def value(self, expression: str, context: etree._Element, scope: Scope, at: etree._Element, literal: bool) -> str:
        """String form of the single node: elements serialised, or their string value inside XPath literals."""
        item, _ = self.single(expression, context, scope, at)
        if is_element(item) and not literal:
            return etree.tostring(item, encoding="unicode", with_tail=False)
        return string_value(item)


def apply_select(
    element: etree._Element,
    expression: str,
    context: etree._Element,
    finder: Finder,
    scope: Scope,
    budget: OutputBudget,
) -> etree._Element:
    """Replace `element` (whose select is already expanded to `expression`) by what it selects; returns it."""
    item, linked = finder.single(expression, context, scope, element)
    if not is_element(item):
        if any(is_element(child) for child in element):
            raise scope.error("select found a value but the element has children", expression, element)
        del element.attrib["select"]
        element.text = string_value(item)
        return element
    budget.spend(item, scope, expression, element)
    del element.attrib["select"]
    # vn:link copies the node as it is: no merge with the local element.
    replacement: etree._Element = copy.deepcopy(item) if linked else merge(element, item)
    replacement.tail = element.tail
    parent = element.getparent()
    if parent is not None:
        parent.replace(element, replacement)
    return replacement
