"""The hydration engine: the whole-document pass at request start and the per-group pass before dispatch."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxml import etree

from vncommon import vnml
from vnvs.hydration import use, variables
from vnvs.hydration.budget import BYTES_SETTING, OutputBudget
from vnvs.hydration.errors import GroupRef, HydrationError, Scope
from vnvs.hydration.fetch import Fetcher
from vnvs.hydration.functions import Expander, FunctionContext, FunctionRegistry
from vnvs.hydration.hrefs import HrefResolver, within
from vnvs.hydration.select import Finder, apply_select
from vnvs.hydration.settings import HydrationSettings
from vnvs.hydration.taskdoc import TaskDocument, TaskSkeleton, check_depth
from vnvs.hydration.xpaths import Evaluator, is_element

log = logging.getLogger(__name__)
# Attributes whose value is an expression in its own right, expanded by its own strategy.
_EXPRESSION_ATTRIBUTES = frozenset({"select", "use"})
# Candidates are found by libxml2 so that each pass over a large clone stays cheap.
_WORK = etree.XPath("descendant-or-self::*[@select or @href or @*[contains(., '$')] or text()[contains(., '$')]]")


@dataclass(slots=True)
class _Pass:
    """Everything one group pass shares: evaluator with its per-group caches, strategies, node budget."""

    finder: Finder
    expander: Expander
    hrefs: HrefResolver
    budget: OutputBudget


class HydrationEngine:
    """Hydrates one request: `prepare` once, then `hydrate_group` for each group in order."""

    def __init__(
        self,
        settings: HydrationSettings,
        request_id: str,
        base_dir: Path | None = None,
        s3_client_factory: Callable[[], Any] | None = None,
    ) -> None:
        self.settings = settings
        self.request_id = request_id
        # One fetcher per engine, so each fetched document is read once per request.
        self.fetcher = Fetcher(settings, base_dir, s3_client_factory)
        self.registry = FunctionRegistry()
        self._variables: dict[str, str] | None = None

    def prepare(self, root: etree._Element) -> None:
        """Whole-document pass: declare and substitute variables, resolve hrefs (mutates `root`)."""
        scope = Scope(None, root)
        budget = OutputBudget(self.settings.max_group_task_bytes)
        self._variables = variables.collect(root, scope, budget)
        variables.apply(root, self._variables, budget, scope)
        resolver = HrefResolver(self.fetcher, self._variables, self.settings.max_passes, budget)
        if resolver.resolve_tree(root, scope) is not root:
            raise scope.error("the root element cannot carry an href", "href", root)
        check_depth(root, 1, scope)

    def hydrate_group(self, root: etree._Element, group_index: int) -> list[TaskDocument]:
        """Expand and hydrate group `group_index` (0-based); returns one TaskDocument per clone, in task order.

        The working document keeps the group's original valuations: hydrated clones hold copies of the
        reference data and would cost many times the request in lxml nodes, while expansion is
        deterministic, so hydrating again gives the same tasks; `apply_results` puts the results in.
        """
        project, group = _locate(root, group_index)
        ref = GroupRef(group.get("name", ""), group_index)
        scope = Scope(ref, root)
        if self._variables is None:
            budget = OutputBudget(self.settings.max_group_task_bytes)
            self._variables = variables.collect(root, Scope(None, root), budget)
        work = self._new_pass(root)
        expansions = use.expand_group(group, work.finder, scope, self.settings.max_clones_per_group)
        skeleton = self._skeleton(root, project, group, work, ref)
        group_path = root.getroottree().getpath(group)
        documents: list[TaskDocument] = []
        total = 0
        for number, expansion in enumerate(expansions, 1):
            clone = use.make_clone(expansion)
            clone_scope = scope.rebased(clone, f"{group_path}/valuation[{number}]")
            clone = self._hydrate(clone, expansion.context, clone_scope, work)
            check_depth(clone, skeleton.valuation_depth, clone_scope)
            xml = skeleton.render(clone, str(number))
            total += len(xml)
            if total > self.settings.max_group_task_bytes:
                limit = self.settings.max_group_task_bytes
                raise clone_scope.limit(f"task XML of the group exceeds {limit} bytes", BYTES_SETTING, "", clone)
            documents.append(TaskDocument(str(number), clone.get("name", ""), ref.name, xml))
        log.info("hydrated group", extra={"fields": {"groupIndex": group_index, "tasks": len(documents)}})
        return documents

    def _new_pass(self, root: etree._Element) -> _Pass:
        budget = OutputBudget(self.settings.max_group_task_bytes)
        assert self._variables is not None
        hrefs = HrefResolver(self.fetcher, self._variables, self.settings.max_passes, budget)
        return _Pass(Finder(Evaluator.for_document(root)), Expander(self.registry, budget), hrefs, budget)

    def _skeleton(
        self, root: etree._Element, project: etree._Element, group: etree._Element, work: _Pass, ref: GroupRef
    ) -> TaskSkeleton:
        skeleton = TaskSkeleton(root, project, group)
        scope = Scope(ref, skeleton.root)
        # The shared parts (project children, group shell) are hydrated once, not once per task.
        if self._hydrate(skeleton.root, project, scope, work) is not skeleton.root:
            raise scope.error("the root element cannot carry a select or href", "", skeleton.root)
        shells = vnml.groups_of(skeleton.root)
        if len(shells) != 1:
            raise scope.error("the group element cannot be replaced by select or href", "", skeleton.root)
        skeleton.shell = shells[0]
        check_depth(skeleton.root, 1, scope)
        return skeleton

    def _hydrate(self, top: etree._Element, context: etree._Element, scope: Scope, work: _Pass) -> etree._Element:
        """Run the per-element strategies until nothing changes; returns `top` or its replacement."""
        assert self._variables is not None
        origins: dict[etree._Element, frozenset[str]] = {}  # replacement -> the selects that produced it
        for _ in range(self.settings.max_passes):
            # One scan per pass finds every element any strategy could act on.
            candidates = _elements(_WORK, top)
            if not candidates:
                return top
            changed = variables.apply_nodes(candidates, self._variables, work.budget, scope)
            changed |= self._expand_calls(candidates, context, scope, work)
            selects = [element for element in candidates if element.get("select") is not None]
            top = self._apply_selects(top, selects, context, scope, work, origins)
            hrefs = [e for e in candidates if _ready_href(e) and within(e, top)]
            if hrefs:
                top = work.hrefs.resolve_tree(top, scope)
            if not (changed or selects or hrefs):
                return top
        raise self._unsettled(top, scope)

    def _unsettled(self, top: etree._Element, scope: Scope) -> HydrationError:
        limit = self.settings.max_passes
        for element in top.iter():
            for name in ("select", "href"):
                if is_element(element) and element.get(name) is not None:
                    problem = f"{name} did not settle after {limit} passes (a cycle?)"
                    return scope.error(problem, element.get(name, ""), element)
        return scope.error(f"hydration did not settle after {limit} passes (a cycle?)", "", top)

    def _context(self, element: etree._Element, node: etree._Element, scope: Scope, work: _Pass) -> FunctionContext:
        def select(expression: str, literal: bool) -> str:
            return work.finder.value(expression, node, scope, element, literal)

        return FunctionContext(self.request_id, element, node, select)

    def _expand_calls(
        self, candidates: list[etree._Element], context: etree._Element, scope: Scope, work: _Pass
    ) -> bool:
        changed = False
        for element in candidates:
            if not _has_call(element):
                continue
            ctx = self._context(element, context, scope, work)
            for name, raw in element.attrib.items():
                value = str(raw)
                if "${" in value and name not in _EXPRESSION_ATTRIBUTES:
                    new = work.expander.expand(value, ctx, scope, literal=False)
                    changed |= new != value
                    element.set(name, new)
            if element.text and "${" in element.text:
                new = work.expander.expand(element.text, ctx, scope, literal=False)
                changed |= new != element.text
                element.text = new
            for child in element:
                if child.tail and "${" in child.tail:
                    new = work.expander.expand(child.tail, ctx, scope, literal=False)
                    changed |= new != child.tail
                    child.tail = new
        return changed

    def _apply_selects(
        self,
        top: etree._Element,
        targets: list[etree._Element],
        context: etree._Element,
        scope: Scope,
        work: _Pass,
        origins: dict[etree._Element, frozenset[str]],
    ) -> etree._Element:
        for element in targets:
            if not within(element, top):
                continue  # replaced together with an ancestor; the next pass sees its copy
            ctx = self._context(element, context, scope, work)
            expression = work.expander.expand(element.get("select", ""), ctx, scope, literal=True)
            _check_select_cycle(element, expression, origins, scope)
            replacement = apply_select(element, expression, context, work.finder, scope, work.budget)
            origins[replacement] = origins.get(element, frozenset()) | {expression}
            if element is top:
                top = replacement
        return top


def _check_select_cycle(
    element: etree._Element, expression: str, origins: dict[etree._Element, frozenset[str]], scope: Scope
) -> None:
    """A select nested inside content that the same expression produced would copy itself forever.

    The context node is fixed for one clone, so the same expression always finds the same node.
    """
    node: etree._Element | None = element
    while node is not None:
        if expression in origins.get(node, ()):
            raise scope.error("select cycle: the selected content selects itself again", expression, element)
        node = node.getparent()


def _ready_href(element: etree._Element) -> bool:
    href = element.get("href")
    return href is not None and "${" not in href


def _has_call(element: etree._Element) -> bool:
    if element.text and "${" in element.text:
        return True
    if any(child.tail and "${" in child.tail for child in element):
        return True
    return any("${" in str(value) for value in element.attrib.values())


def _elements(query: etree.XPath, top: etree._Element) -> list[etree._Element]:
    return [node for node in query(top) if isinstance(node, etree._Element)]  # type: ignore[union-attr]


def _locate(root: etree._Element, group_index: int) -> tuple[etree._Element, etree._Element]:
    scope = Scope(None, root)
    project = vnml.project_of(root)
    if project is None:
        raise scope.error("request has no project", "/vnml/project", root)
    groups = vnml.children(project, vnml.GROUP)
    if not 0 <= group_index < len(groups):
        raise scope.error(f"request has {len(groups)} groups, no group index {group_index}", "", project)
    return project, groups[group_index]
