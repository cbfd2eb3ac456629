"""Fan-out: `use`, `vn:link` and `select` stop at the clone and node limits while they build their results,
and content nested past the parser's depth fails at hydration instead of in every attempt of a task."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import redis.asyncio as redis

from tests.conftest import RedisServer
from tests.faults.support import channel_to
from tests.security.hydration_support import (
    assert_still_serves,
    failure,
    one_valuation,
    portfolio,
    project,
    run_to_end,
    running_mesh,
    vnvs_pid,
)
from tests.security.memory import MIB, peak_rss
from vncommon import keys

pytestmark = pytest.mark.timeout(120)
VNVS_PEAK_RSS = 200 * MIB
NODES = 10_000
ANSWER_S = 5.0


def _chain(tag: str, depth: int, inner: str = "") -> str:
    return f"<{tag}>" * depth + inner + f"</{tag}>" * depth


@dataclass(frozen=True)
class Case:
    xml: bytes
    reason: str
    says: str  # the limit named, or part of the message


CASES = {
    "vn:link of every node to every node as a use": Case(
        project(one_valuation("<x/>", use="vn:link(//*, //*)"), portfolio(NODES)),
        "HYDRATION_LIMIT", "HYDRATION_MAX_CLONES_PER_GROUP"),
    "vn:link of every node to every node as a select": Case(
        project(one_valuation('<x select="vn:link(//*, //*)"/>'), portfolio(NODES)),
        "HYDRATION_FAILED", "select found more than one node"),
    "a group use times a valuation use": Case(
        project('<group name="g" use="//*"><valuation name="v" use="//*"><x/></valuation></group>',
                portfolio(NODES)),
        "HYDRATION_LIMIT", "HYDRATION_MAX_CLONES_PER_GROUP"),
    # Each chain is 150 deep, so the request is well within the parser's 256; a select of one chain that
    # selects the other nests them to 4 + 150 + 150 in the task document.
    "a select nesting content past the parser's depth": Case(
        project(one_valuation('<x select="/vnml/project/portfolio/d"/>'),
                "<portfolio>" + _chain("d", 150, '<y select="/vnml/project/model/e"/>') + "</portfolio>"
                + "<model>" + _chain("e", 150) + "</model>"),
        "HYDRATION_LIMIT", "XML_DEPTH"),
}


@pytest.mark.parametrize("name", list(CASES))
async def test_a_fan_out_fails_at_its_limit_in_bounded_time_and_memory_and_no_task_runs(
        name: str, redis_server: RedisServer, redis_client: redis.Redis, tmp_path: Path) -> None:
    case = CASES[name]
    with running_mesh(redis_server, tmp_path, HYDRATION_MAX_SECONDS="20") as mesh:
        channel, api = channel_to(mesh.vnapi_address)
        async with channel:
            status, elapsed = await run_to_end(api, case.xml, timeout=60)
            detail = failure(status)
            assert detail["reason"] == case.reason, detail
            assert case.says == detail.get("limit") or case.says in detail["message"], detail
            # Failed at hydration: nothing was dispatched, so no worker ever ran (or retried) a task.
            assert await redis_client.hlen(keys.group_tasks_key(status.request_id, 0)) == 0
            rss = peak_rss(vnvs_pid(mesh))
            print(f"measured [{name}]: answered in {elapsed:.2f}s, vnvs peak RSS {rss // MIB} MiB")
            assert elapsed < ANSWER_S, elapsed
            assert rss < VNVS_PEAK_RSS, rss // MIB
            await assert_still_serves(api)
