"""What a request id may look like: ids are generated as uuid4 hex, and anything that could not be one
never reaches a key name (where braces would break the cluster slot tag)."""

from __future__ import annotations

import re

REQUEST_ID_PATTERN = "^[0-9A-Za-z_-]{1,64}$"
_REQUEST_ID = re.compile(REQUEST_ID_PATTERN)


def is_request_id(value: str) -> bool:
    return bool(_REQUEST_ID.match(value))
