"""The href strategy: merge an element with its counterpart in a fetched document, following chains."""

from __future__ import annotations

from lxml import etree

from vnvs.hydration import variables
from vnvs.hydration.budget import OutputBudget
from vnvs.hydration.errors import Scope
from vnvs.hydration.fetch import Fetcher, FetchFailed, FetchLimit, FetchRefused
from vnvs.hydration.merge import find_match, merge

# One step of an href chain: the fetched source and the path of the element it matched there.
ChainKey = tuple[str, str]
_READY_HREFS = etree.XPath("descendant-or-self::*[@href and not(contains(@href, '${'))]")


def within(element: etree._Element, top: etree._Element) -> bool:
    """True when `element` is `top` or still hangs below it (not detached by an earlier replacement)."""
    node: etree._Element | None = element
    while node is not None:
        if node is top:
            return True
        node = node.getparent()
    return False


def pending_hrefs(top: etree._Element) -> list[etree._Element]:
    """Elements under `top` with an href that is ready to fetch (no `${…}` call left in it)."""
    return [element for element in _READY_HREFS(top) if isinstance(element, etree._Element)]  # type: ignore[union-attr]


class HrefResolver:
    """Resolves hrefs outermost first; every merged element is searched again for nested hrefs."""

    def __init__(self, fetcher: Fetcher, variables: dict[str, str], max_depth: int, budget: OutputBudget) -> None:
        self.fetcher = fetcher
        self.variables = variables
        self.max_depth = max_depth
        self.budget = budget

    def resolve_tree(self, top: etree._Element, scope: Scope, chain: tuple[ChainKey, ...] = ()) -> etree._Element:
        """Resolve every href below `top`; returns `top` or, if `top` itself had an href, its replacement."""
        for element in pending_hrefs(top):
            if not within(element, top):
                continue  # an ancestor was replaced and its content already went through resolve_one
            replacement = self.resolve_one(element, scope, chain)
            if element is top:
                top = replacement
        return top

    def resolve_one(self, element: etree._Element, scope: Scope, chain: tuple[ChainKey, ...]) -> etree._Element:
        """Merge `element` over its counterpart in the fetched document, then resolve what came with it."""
        href = element.get("href", "")
        remote, key = self._counterpart(element, href, scope)
        if key in chain:
            raise scope.error("href cycle: this element leads back to itself", href, element)
        if len(chain) >= self.max_depth:
            raise scope.error(f"href chain longer than {self.max_depth}", href, element)
        self.budget.spend(remote, scope, href, element)
        del element.attrib["href"]
        parent = element.getparent()
        merged = merge(element, remote)
        merged.tail = element.tail
        if parent is not None:
            parent.replace(element, merged)
        variables.apply(merged, self.variables, self.budget, scope)
        return self.resolve_tree(merged, scope, (*chain, key))

    def _counterpart(self, element: etree._Element, href: str, scope: Scope) -> tuple[etree._Element, ChainKey]:
        try:
            source = self.fetcher.location(href)
            document = self.fetcher.fetch(source)
        except FetchLimit as exc:
            raise scope.limit(f"href refused ({exc})", exc.limit, href, element) from None
        except FetchRefused as exc:
            raise scope.error(f"href refused ({exc})", href, element) from None
        except FetchFailed as exc:
            raise scope.error(f"fetch failed ({exc})", href, element) from None
        candidates = find_match(document, element, scope.path(element))
        if len(candidates) != 1:
            found = "no" if not candidates else str(len(candidates))
            raise scope.error(f"fetched document has {found} matching <{element.tag}> elements", href, element)
        remote = candidates[0]
        return remote, (source, remote.getroottree().getpath(remote))
