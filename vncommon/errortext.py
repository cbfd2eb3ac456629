"""Error texts whose first line is a summary and whose further lines may quote what a script printed.

A failed task's error carries the tail of the script's stderr and the start of its output, so whoever
reads the request's failure detail sees what the script said. That text is derived from request data,
so a log line at INFO or above carries only the summary; the whole text is logged at DEBUG.
"""

from __future__ import annotations


def compose(summary: str, *details: str) -> str:
    """`summary` on the first line, the non-empty `details` (script output) below it."""
    detail = "; ".join(part for part in details if part)
    return f"{summary}\n{detail}" if detail else summary


def split(text: str) -> tuple[str, str]:
    """(summary, detail) of a composed text; the detail is empty when there is none."""
    summary, _, detail = text.partition("\n")
    return summary, detail


def summary(text: str) -> str:
    """The first line: what an INFO log line may show."""
    return text.partition("\n")[0]
