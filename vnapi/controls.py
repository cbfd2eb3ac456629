"""The controls a submission may carry besides its document: priority and deadline (SPEC section 13).

Checked before anything is stored, like the document: an unknown priority or a deadline that is not a
positive number of milliseconds within the request's lifetime is refused naming the field.
"""

from __future__ import annotations

from vncommon.errors import InvalidArgument
from vncommon.state import PRIORITIES, Priority, priority_from_proto


def check_priority(value: int) -> Priority:
    """The priority a Submit names (UNSPECIFIED is normal)."""
    try:
        return priority_from_proto(value)
    except ValueError:
        raise InvalidArgument(f"priority {value} is not one of {', '.join(PRIORITIES)}",
                              {"field": "priority"}) from None


def check_deadline_ms(value: int, ttl_seconds: int) -> int:
    """The deadline in milliseconds after receipt (0: none). A deadline past the request's retention
    (REQUEST_TTL_SECONDS) could never be told apart from none, so it is refused as absurd."""
    limit = ttl_seconds * 1000
    if value > limit:
        raise InvalidArgument(
            f"deadline_ms {value} is more than the request's lifetime of {limit} ms (REQUEST_TTL_SECONDS)",
            {"field": "deadline_ms", "limit": str(limit)})
    return value
