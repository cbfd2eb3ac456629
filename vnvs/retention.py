"""What happens to a request's data once it ends: TTL on every key, a tombstone, the updates stream gone."""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as redis

from vncommon import keys

# The tombstone outlives the data so that results of a purged request answer 410, not 404.
TOMBSTONE_EXTRA_SECONDS = 30 * 86_400


def queue_expiry(pipe: redis.client.Pipeline, request_id: str, task_counts: Sequence[int], ttl_seconds: int) -> None:
    """Add the retention commands of an ended request to a pipeline."""
    for key in keys.request_keys(request_id, len(task_counts)):
        pipe.expire(key, ttl_seconds)
    for group_index, count in enumerate(task_counts):
        for task_number in range(1, count + 1):
            pipe.expire(keys.task_xml_key(request_id, group_index, str(task_number)), ttl_seconds)
            pipe.expire(keys.task_result_key(request_id, group_index, str(task_number)), ttl_seconds)
    pipe.delete(keys.updates_stream(request_id))
    pipe.delete(keys.lease_key(request_id))
    pipe.zrem(keys.ACTIVE_REQUESTS, request_id)
    pipe.set(keys.tombstone_key(request_id), "1", ex=ttl_seconds + TOMBSTONE_EXTRA_SECONDS)
