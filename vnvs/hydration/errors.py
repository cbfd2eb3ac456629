"""The one hydration error, and the scope that knows which element and group an error is about."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from lxml import etree

from vncommon.errors import HydrationLimit, VnError

MAX_QUOTED_CHARS = 300


def clip(text: str, limit: int = MAX_QUOTED_CHARS) -> str:
    """`text`, or its first `limit` characters and how long it was."""
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"


@dataclass(frozen=True, slots=True)
class GroupRef:
    """A group by name and 0-based index."""

    name: str
    index: int


class HydrationError(VnError):
    """Hydration could not produce self-contained task XML; names the expression, element and group."""

    reason = "HYDRATION_FAILED"
    code = grpc.StatusCode.FAILED_PRECONDITION

    def __init__(self, problem: str, expression: str, element_path: str, group: GroupRef | None) -> None:
        # Expressions and paths come from the request and from what hydration made of it: clipped, so
        # the failure detail of a runaway request stays small enough to store and to fetch.
        expression, element_path = clip(expression), clip(element_path)
        where = "the whole document" if group is None else f"group {group.name!r} (index {group.index})"
        message = f"{problem}: expression {expression!r} at {element_path} in {where}"
        metadata = {"expression": expression, "elementPath": element_path}
        if group is not None:
            metadata.update(groupName=group.name, groupIndex=str(group.index))
        super().__init__(message, metadata)
        self.problem = problem
        self.expression = expression
        self.element_path = element_path
        self.group = group


class HydrationLimitExceeded(HydrationError):
    """Hydration passed one of its budgets; `limit` names it (a setting, or XML_DEPTH). Never retried."""

    reason = HydrationLimit.reason
    code = HydrationLimit.code

    def __init__(self, problem: str, limit: str, expression: str, element_path: str, group: GroupRef | None) -> None:
        super().__init__(problem, expression, element_path, group)
        self.metadata["limit"] = limit
        self.limit = limit


class Scope:
    """Maps elements of one (possibly detached) tree to their path in the request, for error messages."""

    __slots__ = ("base", "group", "root")

    def __init__(self, group: GroupRef | None, root: etree._Element, base: str = "") -> None:
        self.group = group
        self.root = root
        self.base = base

    def path(self, element: etree._Element) -> str:
        """Path of `element` as it reads in the request, e.g. /vnml/project/group[2]/valuation[1]/market."""
        tree = element.getroottree()
        full = tree.getpath(element)
        if not self.base:
            return full
        top = tree.getroot()
        # A detached clone's own tree starts at the clone; swap that prefix for where the clone belongs.
        return self.base + full[len(tree.getpath(top)) :]

    def error(self, problem: str, expression: str, element: etree._Element | None) -> HydrationError:
        """A HydrationError located at `element` (or at the scope's root when unknown)."""
        where = self.path(element if element is not None else self.root)
        return HydrationError(problem, expression, where, self.group)

    def limit(self, problem: str, limit: str, expression: str, element: etree._Element | None
              ) -> HydrationLimitExceeded:
        """A HydrationLimitExceeded naming `limit`, located like `error`."""
        where = self.path(element if element is not None else self.root)
        return HydrationLimitExceeded(problem, limit, expression, where, self.group)

    def rebased(self, root: etree._Element, base: str) -> Scope:
        """The same group, for another tree rooted at `base`."""
        return Scope(self.group, root, base)
