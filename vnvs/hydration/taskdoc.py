"""Task documents: one shared skeleton per group, into which each hydrated valuation is slotted in turn."""

from __future__ import annotations

import copy
from functools import cache
from typing import NamedTuple

from lxml import etree

from vncommon import vnml
from vncommon.xmlsafe import MAX_DEPTH, serialize
from vnvs.hydration.errors import Scope
from vnvs.hydration.xpaths import compile_xpath, is_element, namespaces

REFERENCE_TAGS = frozenset({"market", "model", "calculator", "portfolio"})
MARKER_TAG = "vndb"
DEPTH_LIMIT = "XML_DEPTH"


class TaskDocument(NamedTuple):
    """One task: its id ("1", "2", … in document order), names, and its serialised XML. A tuple: a group
    of 100,000 tasks makes 100,000 of them on vnvs's event loop, at a quarter of a frozen dataclass's cost."""

    task_id: str
    valuation_name: str
    group_name: str
    xml: bytes


def _shallow(element: etree._Element) -> etree._Element:
    attributes = {str(name): str(value) for name, value in element.attrib.items()}
    twin = etree.Element(element.tag, attrib=attributes, nsmap=namespaces(element))
    twin.text = element.text
    twin.tail = element.tail
    return twin


class TaskSkeleton:
    """The hydrated root without reference data or other groups, holding the current group's shell."""

    def __init__(self, root: etree._Element, project: etree._Element, group: etree._Element) -> None:
        self.root = _shallow(root)
        self.root.tail = None
        self.slot = 0
        self.shell = _shallow(group)
        if "use" in self.shell.attrib:
            del self.shell.attrib["use"]
        for child in root:
            if child is project:
                self.root.append(self._project(project, group))
            else:
                self.root.append(copy.deepcopy(child))

    def _project(self, project: etree._Element, group: etree._Element) -> etree._Element:
        twin = _shallow(project)
        for child in project:
            if child is group:
                twin.append(self._fill_shell(group))
            elif not (is_element(child) and child.tag in REFERENCE_TAGS | {vnml.GROUP}):
                twin.append(copy.deepcopy(child))
        return twin

    def _fill_shell(self, group: etree._Element) -> etree._Element:
        placed = False
        for child in group:
            if vnml.is_named(child, vnml.VALUATION):
                placed = True
                continue
            if not placed:
                self.slot += 1
            self.shell.append(copy.deepcopy(child))
        return self.shell

    @property
    def valuation_depth(self) -> int:
        """How deep a task's valuation sits in its task document (the root element is at depth 1)."""
        return sum(1 for _ in self.shell.iterancestors()) + 2

    def render(self, valuation: etree._Element, task_id: str) -> bytes:
        """Task XML for `valuation` with `<vndb externalId=task_id/>` appended; leaves `valuation` as it was."""
        for stale in valuation.findall(MARKER_TAG):
            # A valuation copied from an earlier group's result still carries that task's marker.
            valuation.remove(stale)
        marker = etree.SubElement(valuation, MARKER_TAG, externalId=task_id)
        tail = valuation.tail
        self.shell.insert(self.slot, valuation)
        try:
            return serialize(self.root)
        finally:
            self.shell.remove(valuation)
            valuation.remove(marker)
            valuation.tail = tail


@cache
def _deeper_than(steps: int) -> etree.XPath:
    # `*/*/…/*` walks one level per step in libxml2: linear in the tree, however it is shaped.
    return compile_xpath("(" + "/".join(["*"] * steps) + ")[1]")


def check_depth(element: etree._Element, depth: int, scope: Scope) -> None:
    """Refuse content that would nest deeper than the parser accepts, once `element` sits at `depth`.

    Selects and hrefs can nest content far deeper than the request was; every worker would refuse such
    a task document, so it fails here, at hydration, instead of after every attempt of the task.
    """
    steps = MAX_DEPTH - depth + 1
    found = _deeper_than(steps)(element) if steps > 0 else [element]
    if isinstance(found, list) and found and isinstance(found[0], etree._Element):
        raise scope.limit(f"task XML would nest elements deeper than {MAX_DEPTH} levels, which the XML parser "
                          "refuses (selected or fetched content nests too deeply)", DEPTH_LIMIT, "", found[0])
