"""What happens to a request's data once it ends: TTL on every key, a tombstone, the updates stream gone."""

from __future__ import annotations

from collections.abc import Sequence

from vncommon import keys
from vncommon.slotpipe import StepPipeline

# The tombstone outlives the data so that results of a purged request answer 410, not 404.
TOMBSTONE_EXTRA_SECONDS = 30 * 86_400


# One script call instead of an EXPIRE per key: all keys of a request share its hash slot, so this is
# also valid on a Redis Cluster, and a 2,000-task request costs one command, not 4,000.
_EXPIRE_ALL = """
for _, key in ipairs(KEYS) do redis.call('EXPIRE', key, ARGV[1]) end
return #KEYS
"""


def request_data_keys(request_id: str, task_counts: Sequence[int]) -> list[str]:
    """Every key holding the request's data: request keys, group state, task documents and results."""
    found = keys.request_keys(request_id, len(task_counts))
    for group_index, count in enumerate(task_counts):
        for task_number in range(1, count + 1):
            found.append(keys.task_xml_key(request_id, group_index, str(task_number)))
            found.append(keys.task_result_key(request_id, group_index, str(task_number)))
    return found


def queue_expiry(pipe: StepPipeline, request_id: str, task_counts: Sequence[int], ttl_seconds: int) -> None:
    """Add the retention commands of an ended request to a pipeline."""
    data_keys = request_data_keys(request_id, task_counts)
    pipe.eval(_EXPIRE_ALL, len(data_keys), *data_keys, ttl_seconds)
    pipe.delete(keys.updates_stream(request_id))
    pipe.delete(keys.lease_key(request_id))
    pipe.zrem(keys.ACTIVE_REQUESTS, request_id)
    pipe.set(keys.tombstone_key(request_id), "1", ex=ttl_seconds + TOMBSTONE_EXTRA_SECONDS)
