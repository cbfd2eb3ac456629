"""vnvs runs a request by the same shape rule vnapi checks: the namespaced documents the validator
refuses fail the run naming the reason (never an empty success), and the ones it accepts are valued whole."""

from __future__ import annotations

import json

import pytest
import redis.asyncio as redis

from tests.common.vnml_documents import ACCEPTED, REFUSED, Case
from tests.vnvs.run_support import shared_sandbox
from vnapi.intake import Intake, Submission
from vncommon import keys, vnml
from vncommon.xmlsafe import parse_xml
from vnvs.hydration import HydrationEngine, HydrationSettings
from vnvs.sequencer import RequestRun
from vnvs.settings import VnvsSettings


@pytest.mark.parametrize("case", ACCEPTED, ids=lambda case: case.name)
def test_every_valuation_the_validator_counted_becomes_a_task(case: Case) -> None:
    root = parse_xml(case.xml)
    written = [len(vnml.valuations_of(group)) for group in vnml.groups_of(root)]
    engine = HydrationEngine(HydrationSettings(), "r")
    engine.prepare(root)
    assert vnml.count_groups(root) == case.groups == len(written)
    tasks = [engine.hydrate_group(root, index) for index in range(case.groups)]
    assert [len(documents) for documents in tasks] == written


def test_foreign_namespace_content_travels_in_the_task_documents() -> None:
    root = parse_xml(ACCEPTED[0].xml)
    engine = HydrationEngine(HydrationSettings(), "r")
    engine.prepare(root)
    first = engine.hydrate_group(root, 0)[0].xml
    assert b"<ext:note>kept</ext:note>" in first and b"<ext:tag/>" in first and b"<ext:extra/>" in first


@pytest.mark.parametrize("case", REFUSED, ids=lambda case: case.name)
async def test_a_document_the_validator_refuses_fails_the_run_with_the_same_reason(
    case: Case, redis_client: redis.Redis
) -> None:
    # Stored without the validator, as a request from before this rule would be.
    accepted = await Intake(redis_client, 60).submit(Submission(xml=case.xml, group_count=1))
    await RequestRun(redis_client, VnvsSettings(), await shared_sandbox(), accepted.request_id,
                     accepted.trace_id).run()
    state = await redis_client.hget(keys.request_state_key(accepted.request_id), "status")
    assert state == b"failed"
    detail = json.loads(await redis_client.get(keys.request_failure_key(accepted.request_id)))
    assert detail["reason"] == "INVALID_VNML"
    assert all(words in detail["message"] for words in case.refusal)
    assert await redis_client.exists(keys.DISPATCH_STREAM) == 0
