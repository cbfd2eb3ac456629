"""A node budget that stops runaway copying (select and href chains that grow the tree) early."""

from __future__ import annotations

from lxml import etree

from vnvs.hydration.errors import Scope

# Serialised XML spends at least this many bytes per element, so copying more nodes than
# max_group_task_bytes / BYTES_PER_NODE can never fit the group's task byte limit anyway.
BYTES_PER_NODE = 16
# Compiled once: element.xpath(text) would compile the expression again on every copy.
_COUNT_NODES = etree.XPath("count(descendant-or-self::node())")


class NodeBudget:
    """Counts nodes copied into the working tree or clones during one pass over a document or group."""

    __slots__ = ("limit", "spent")

    def __init__(self, max_bytes: int) -> None:
        self.limit = max(max_bytes // BYTES_PER_NODE, 1)
        self.spent = 0

    def spend(self, source: etree._Element, scope: Scope, expression: str, at: etree._Element) -> None:
        """Charge for copying `source`; a HydrationError once the limit is passed."""
        # count() runs in libxml2; a Python loop here would cost as much as the copy itself.
        self.spent += int(_COUNT_NODES(source))  # type: ignore[arg-type]
        if self.spent > self.limit:
            raise scope.error(
                f"hydration copied more than {self.limit} nodes (limit from max_group_task_bytes)",
                expression,
                at,
            )
