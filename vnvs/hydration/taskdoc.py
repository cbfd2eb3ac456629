"""Task documents: one shared skeleton per group, into which each hydrated valuation is slotted in turn."""

from __future__ import annotations

import copy
from dataclasses import dataclass

from lxml import etree

from vncommon import vnml
from vncommon.xmlsafe import serialize
from vnvs.hydration.xpaths import is_element, namespaces

REFERENCE_TAGS = frozenset({"market", "model", "calculator", "portfolio"})
MARKER_TAG = "vndb"


@dataclass(frozen=True, slots=True)
class TaskDocument:
    """One task: its id ("1", "2", … in document order), names, and its serialised XML."""

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
