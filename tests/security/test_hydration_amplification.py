"""Hydration amplification: a small request cannot make hydration produce exponentially more than it is.

Each case once took vnvs to gigabytes (`$A = "$A$A"`: 2.4 GB). Now expansion is charged while it is
produced, so a case ends with a clear error in a bounded time, vnvs stays small (its peak resident size
measured by the kernel), and a normal request is served right after.
"""

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

pytestmark = pytest.mark.timeout(120)
VNVS_PEAK_RSS = 200 * MIB
SMALL_BYTES = str(16 * MIB)
BIG = "/vnml/project/portfolio"
TWO_SELECTS = f"${{select({BIG})}}${{select({BIG})}}"
# A portfolio of 2000 instruments that itself holds the two selects: each pass doubles the copies.
SELF_SELECTING = project(one_valuation(f"<x>{TWO_SELECTS}</x>"), portfolio(2000, "x")).replace(
    b"<portfolio>", f"<portfolio>{TWO_SELECTS}".encode())


@dataclass(frozen=True)
class Case:
    xml: bytes
    env: dict[str, str]
    reason: str
    says: str  # in the failure message, or the limit named
    seconds: float  # time to answer


def _chain(levels: int) -> str:
    """$V1 = "$V0$V0", $V2 = "$V1$V1", …: no cycle, but 2^levels times the first value."""
    return '<?vnvs $V0 = "0123456789" ?>' + "".join(
        f'<?vnvs $V{n} = "$V{n - 1}$V{n - 1}" ?>' for n in range(1, levels + 1))


CASES = {
    "a variable doubling itself": Case(
        project(one_valuation("<x>$A</x>"), declarations='<?vnvs $A = "$A$A" ?>'), {},
        "HYDRATION_FAILED", "variable $A refers to itself", 5),
    "a chain of doubling variables": Case(
        project(one_valuation("<x>$V40</x>"), declarations=_chain(40)),
        {"HYDRATION_MAX_GROUP_TASK_BYTES": SMALL_BYTES}, "HYDRATION_LIMIT", "HYDRATION_MAX_GROUP_TASK_BYTES", 10),
    "one large variable used a hundred thousand times": Case(
        project(one_valuation("<x>" + "$B " * 100_000 + "</x>"), declarations=f'<?vnvs $B = "{"b" * 65536}" ?>'),
        {"HYDRATION_MAX_GROUP_TASK_BYTES": SMALL_BYTES}, "HYDRATION_LIMIT", "HYDRATION_MAX_GROUP_TASK_BYTES", 10),
    "two selects of a node that holds the same two selects": Case(
        SELF_SELECTING, {"HYDRATION_MAX_GROUP_TASK_BYTES": SMALL_BYTES},
        "HYDRATION_LIMIT", "HYDRATION_MAX_GROUP_TASK_BYTES", 20),
    "the same with only the memory limit to stop it": Case(
        SELF_SELECTING, {"HYDRATION_MAX_MEMORY_BYTES": str(512 * MIB)},
        "HYDRATION_LIMIT", "HYDRATION_MAX_MEMORY_BYTES", 40),
    "an EXSLT string padded to two gigabytes": Case(
        project(one_valuation('<x select="str:padding(2000000000, \'x\')"/>')).replace(
            b"<vnml>", b'<vnml xmlns:str="http://exslt.org/strings">'), {},
        "HYDRATION_FAILED", "unknown namespace prefix", 5),
    "an EXSLT regular expression": Case(
        project(one_valuation('<x select="/vnml/project[re:test(@name, \'(a+)+$\')]"/>')).replace(
            b"<vnml>", b'<vnml xmlns:re="http://exslt.org/regular-expressions">'), {},
        "HYDRATION_FAILED", "unknown namespace prefix", 5),
}


@pytest.mark.parametrize("name", list(CASES))
async def test_an_amplifying_request_fails_in_bounded_time_and_memory_and_the_service_still_serves(
        name: str, redis_server: RedisServer, redis_client: redis.Redis, tmp_path: Path) -> None:
    case = CASES[name]
    with running_mesh(redis_server, tmp_path, HYDRATION_MAX_SECONDS="20", **case.env) as mesh:
        channel, api = channel_to(mesh.vnapi_address)
        async with channel:
            status, elapsed = await run_to_end(api, case.xml, timeout=60)
            detail = failure(status)
            assert detail["reason"] == case.reason, detail
            assert case.says == detail.get("limit") or case.says in detail["message"], detail
            assert elapsed < case.seconds, elapsed
            rss = peak_rss(vnvs_pid(mesh))
            print(f"measured [{name}]: answered in {elapsed:.2f}s, vnvs peak RSS {rss // MIB} MiB")
            assert rss < VNVS_PEAK_RSS, rss // MIB
            await assert_still_serves(api)
