"""Folding task results back into the working document, and assembling the final response."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import grpc
from lxml import etree

from vncommon.errors import MalformedXml, VnError
from vncommon.xmlsafe import parse_xml, serialize
from vnvs.hydration.taskdoc import REFERENCE_TAGS

RESPONSE_TAG = "vnml-response"


class InvalidResult(VnError):
    """A task result is not a task document or a bare <valuation>."""

    reason = "INVALID_RESULT"
    code = grpc.StatusCode.FAILED_PRECONDITION


def _groups(root: etree._Element) -> list[etree._Element]:
    project = root.find("project")
    return [] if project is None else project.findall("group")


def result_valuation(result: bytes, group_index: int, position: int) -> etree._Element:
    """The result valuation inside `result`: a whole task document's valuation, or a bare <valuation>."""
    where = f"result of task {position} in group {group_index}"
    try:
        document = parse_xml(result, what=where)
    except MalformedXml as exc:
        raise InvalidResult(exc.message, {"groupIndex": str(group_index), "taskId": str(position)}) from None
    if document.tag == "valuation":
        return document
    found = document.findall("project/group/valuation")
    if len(found) != 1:
        raise InvalidResult(
            f"{where} holds {len(found)} project/group/valuation elements, expected exactly one",
            {"groupIndex": str(group_index), "taskId": str(position)},
        )
    return found[0]


def apply_results(root: etree._Element, group_index: int, results: Sequence[bytes]) -> None:
    """Replace group `group_index`'s valuations by `results` (ordered by task id), so later groups see them."""
    groups = _groups(root)
    if not 0 <= group_index < len(groups):
        raise InvalidResult(f"request has {len(groups)} groups, no group index {group_index}")
    group = groups[group_index]
    valuations = [result_valuation(data, group_index, n) for n, data in enumerate(results, 1)]
    old = [child for child in group if isinstance(child.tag, str) and child.tag == "valuation"]
    slot = group.index(old[0]) if old else len(group)
    tail = old[0].tail if old else None
    for valuation in old:
        group.remove(valuation)
    for offset, valuation in enumerate(valuations):
        valuation.tail = tail
        group.insert(slot + offset, valuation)
    # The spent use must not fan out again if this group is ever hydrated on the updated document.
    if "use" in group.attrib:
        del group.attrib["use"]


def assemble_response(root: etree._Element, request_id: str) -> bytes:
    """`<vnml-response requestId=… status="succeeded">` around the project without its reference data."""
    response = etree.Element(RESPONSE_TAG, requestId=request_id, status="succeeded")
    project = root.find("project")
    if project is not None:
        twin = etree.SubElement(response, "project", attrib={str(k): str(v) for k, v in project.attrib.items()})
        twin.text = project.text
        for child in project:
            if isinstance(child.tag, str) and child.tag in REFERENCE_TAGS:
                continue
            twin.append(copy.deepcopy(child))
    return serialize(response)
