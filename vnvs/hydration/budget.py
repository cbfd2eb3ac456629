"""What one hydration pass may produce, charged while it is produced: nodes copied and bytes expanded.

Every step that can grow the tree or its text (select and href copies, variable substitution, `${…}`
expansion) charges here before or as it grows it, so a runaway (`$A = "$A$A"`, a select of a large node
repeated in one text, chains that copy themselves) stops at the limit instead of after it has built a
tree many times that size.
"""

from __future__ import annotations

from lxml import etree

from vnvs.hydration.errors import Scope

# Serialised XML spends at least this many bytes per element, so copying more nodes than
# max_group_task_bytes / BYTES_PER_NODE can never fit the group's task byte limit anyway.
BYTES_PER_NODE = 16
BYTES_SETTING = "HYDRATION_MAX_GROUP_TASK_BYTES"
# Compiled once: element.xpath(text) would compile the expression again on every copy.
_COUNT_NODES = etree.XPath("count(descendant-or-self::node())")


class OutputBudget:
    """Counts nodes copied and text bytes expanded during one pass over a document or group."""

    __slots__ = ("byte_limit", "bytes_spent", "node_limit", "nodes_spent")

    def __init__(self, max_bytes: int) -> None:
        self.node_limit = max(max_bytes // BYTES_PER_NODE, 1)
        self.nodes_spent = 0
        self.byte_limit = max_bytes
        self.bytes_spent = 0

    def spend(self, source: etree._Element, scope: Scope, expression: str, at: etree._Element) -> None:
        """Charge for copying `source` (before it is copied); a HydrationLimitExceeded once past the limit."""
        # count() runs in libxml2; a Python loop here would cost as much as the copy itself.
        self.nodes_spent += int(_COUNT_NODES(source))  # type: ignore[arg-type]
        if self.nodes_spent > self.node_limit:
            raise scope.limit(f"hydration copied more than {self.node_limit} nodes (limit from {BYTES_SETTING})",
                              BYTES_SETTING, expression, at)

    def spend_bytes(self, count: int, scope: Scope, expression: str, at: etree._Element | None) -> None:
        """Charge `count` bytes of text about to be added; a HydrationLimitExceeded once past the limit."""
        self.bytes_spent += count
        if self.bytes_spent > self.byte_limit:
            raise scope.limit(f"hydration expanded more than {self.byte_limit} bytes of text ({BYTES_SETTING})",
                              BYTES_SETTING, expression, at)
