"""What a request id may look like: ids are generated as uuid4 hex, and anything that could not be one
never reaches a key name (where braces would break the cluster slot tag)."""

from __future__ import annotations

import re
import uuid

from vncommon import keys

REQUEST_ID_PATTERN = "^[0-9A-Za-z_-]{1,64}$"
_REQUEST_ID = re.compile(REQUEST_ID_PATTERN)


def is_request_id(value: str) -> bool:
    return bool(_REQUEST_ID.match(value))


def new_request_id(lifecycle_shard: int = 0, shards: int = 1) -> str:
    """A fresh uuid4 hex id whose lifecycle shard (keys.lifecycle_shard_of) is `lifecycle_shard`.

    Drawn by rejection: about `shards` tries of a few microseconds each. The id stays a plain random
    uuid4; only which of them is kept depends on the shard, and the ingest and dispatch shards (another
    hash) stay evenly spread.
    """
    if not 0 <= lifecycle_shard < max(shards, 1):
        raise ValueError(f"lifecycle shard {lifecycle_shard} is not one of {shards} shards")
    while True:
        candidate = uuid.uuid4().hex
        if keys.lifecycle_shard_of(candidate, shards) == lifecycle_shard:
            return candidate
