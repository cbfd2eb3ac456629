"""The use strategy: fan a group or valuation out into one clone per matched node (its context node)."""

from __future__ import annotations

import copy
from typing import NamedTuple

from lxml import etree

from vncommon import vnml
from vnvs.hydration.errors import HydrationLimitExceeded, Scope
from vnvs.hydration.select import Finder
from vnvs.hydration.xpaths import is_element, parse_link

CLONES_SETTING = "HYDRATION_MAX_CLONES_PER_GROUP"


class Expansion(NamedTuple):
    """One valuation to hydrate and the node its relative expressions read from."""

    source: etree._Element
    context: etree._Element


def matches(element: etree._Element, context: etree._Element, finder: Finder, scope: Scope, room: int,
            limit: int) -> list[etree._Element]:
    """The nodes `element`'s use finds: vn:link children of each source node, or a plain XPath's elements.

    More than `room` nodes (what the group's clone `limit` has left) is the clone limit's error, raised
    before a vn:link builds the whole list.
    """
    expression = element.get("use", "")
    try:
        link = parse_link(expression)
    except ValueError as exc:
        raise scope.error(f"wrong argument count ({exc})", expression, element) from None
    if not expression.strip():
        raise scope.error("empty use expression", expression, element)
    if link is not None:
        found = finder.link(link[0], link[1], context, scope, element, room)
    else:
        found = finder.evaluator.evaluate(expression, context, scope, element)
    if len(found) > room:
        raise _too_many(scope, expression, element, limit)
    if not all(is_element(node) for node in found):
        raise scope.error("use must find elements", expression, element)
    if not found:
        raise scope.error("use found no node, so it makes zero clones", expression, element)
    return found


def expand_group(group: etree._Element, finder: Finder, scope: Scope, limit: int) -> list[Expansion]:
    """Every valuation of `group` after fan-out, in document order, as (source, context) pairs.

    A group's own use repeats all its valuations once per matched node; a valuation without a use
    keeps itself (in the working document) as its context node.
    """
    valuations = vnml.valuations_of(group)
    if not valuations:
        raise scope.error("group has no valuation", group.get("use", ""), group)
    group_contexts: list[etree._Element | None] = [None]
    if group.get("use") is not None:
        group_contexts = [*matches(group, group, finder, scope, limit, limit)]
    expansions: list[Expansion] = []
    for group_context in group_contexts:
        for valuation in valuations:
            context = valuation if group_context is None else group_context
            if valuation.get("use") is None:
                expansions.append(Expansion(valuation, context))
            else:
                found = matches(valuation, context, finder, scope, limit - len(expansions), limit)
                expansions.extend(Expansion(valuation, node) for node in found)
            if len(expansions) > limit:
                raise _too_many(scope, valuation.get("use", ""), valuation, limit)
    return expansions


def _too_many(scope: Scope, expression: str, element: etree._Element, limit: int) -> HydrationLimitExceeded:
    return scope.limit(f"more than {limit} clones in one group", CLONES_SETTING, expression, element)


def make_clone(expansion: Expansion) -> etree._Element:
    """A detached copy of the expansion's valuation without its use attribute."""
    clone = copy.deepcopy(expansion.source)
    if "use" in clone.attrib:
        del clone.attrib["use"]
    return clone
