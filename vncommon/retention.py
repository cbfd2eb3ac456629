"""What happens to a request's data once it ends: TTL on every key, a tombstone, the updates stream gone.

Task documents and results are written with REQUEST_TTL_SECONDS already (`SET ... EX`), so they need no
command here: a 2,000-task request ends with a dozen commands, not 4,000. They may expire up to one
run's duration before the request's own keys; the response holds every result by then.
"""

from __future__ import annotations

from collections.abc import Sequence

from vncommon import keys
from vncommon.slotpipe import StepPipeline, is_script, shared_part

# The tombstone outlives the data so that results of a purged request answer 410, not 404.
TOMBSTONE_EXTRA_SECONDS = 30 * 86_400


# One script call instead of a round trip per key: all keys of a request share its hash slot, so this is
# also valid on a Redis Cluster.
_EXPIRE_ALL = """
for _, key in ipairs(KEYS) do redis.call('EXPIRE', key, ARGV[1]) end
return #KEYS
"""


def request_data_keys(request_id: str, task_counts: Sequence[int]) -> list[str]:
    """The request's own keys and group state: the keys written without a TTL (the response or failure
    is stored with it)."""
    written_with_ttl = {keys.request_response_key(request_id), keys.request_failure_key(request_id)}
    return [key for key in keys.request_keys(request_id, len(task_counts)) if key not in written_with_ttl]


def queue_expiry(pipe: StepPipeline, request_id: str, task_counts: Sequence[int], ttl_seconds: int) -> None:
    """Add the retention commands of an ended request to a pipeline (inside a step's script, one EXPIRE
    per key: a script cannot call another)."""
    data_keys = request_data_keys(request_id, task_counts)
    if is_script(pipe):
        for key in data_keys:
            pipe.expire(key, ttl_seconds)
    else:
        pipe.eval(_EXPIRE_ALL, len(data_keys), *data_keys, ttl_seconds)
    pipe.delete(keys.updates_stream(request_id), keys.lease_key(request_id))  # one slot: one command
    shared_part(pipe).zrem(keys.ACTIVE_REQUESTS, request_id)  # a global key: another slot on a cluster
    pipe.set(keys.tombstone_key(request_id), "1", ex=ttl_seconds + TOMBSTONE_EXTRA_SECONDS)
