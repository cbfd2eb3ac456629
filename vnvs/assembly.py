"""Folding task results back into the working document, and assembling the final response."""

from __future__ import annotations

import copy
from collections.abc import Sequence

from lxml import etree

from vncommon import vnml
from vncommon.config import RESPONSE_PAYLOAD_FACTOR
from vncommon.errors import InvalidResult, MalformedXml, ResponseTooLarge
from vncommon.state import Status
from vncommon.xmlsafe import XmlLimits, parse_xml, serialize
from vnvs.hydration.taskdoc import REFERENCE_TAGS

RESPONSE_TAG = "vnml-response"
# Results of earlier groups not yet in the working document: (group index, results by task id).
Fold = tuple[int, Sequence[bytes]]
__all__ = ["Fold", "InvalidResult", "ResponseTooLarge", "apply_results", "assemble_response", "fold_results",
           "folded_response", "result_valuation"]


def _groups(root: etree._Element) -> list[etree._Element]:
    return vnml.groups_of(root)


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


def _check_group(root: etree._Element, group_index: int) -> etree._Element:
    groups = _groups(root)
    if not 0 <= group_index < len(groups):
        raise InvalidResult(f"request has {len(groups)} groups, no group index {group_index}")
    return groups[group_index]


def _valuations(group: etree._Element) -> list[etree._Element]:
    return vnml.valuations_of(group)


def apply_results(root: etree._Element, group_index: int, results: Sequence[bytes]) -> None:
    """Replace group `group_index`'s valuations by `results` (ordered by task id), so later groups see them."""
    group = _check_group(root, group_index)
    valuations = [result_valuation(data, group_index, n) for n, data in enumerate(results, 1)]
    old = _valuations(group)
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


def fold_results(root: etree._Element, folds: Sequence[Fold]) -> None:
    """`apply_results` for each group in `folds`, in order."""
    for group_index, results in folds:
        apply_results(root, group_index, results)


def folded_response(document: bytes, limits: XmlLimits, folds: Sequence[Fold], request_id: str,
                    last_results: Sequence[bytes], max_bytes: int | None) -> bytes:
    """The response from a serialised working document: fold the earlier groups in, then assemble with the
    last group's results. vnvs runs this inline for a small document and in a hydration process for a
    large one, so a large tree never lives in the service process."""
    root = parse_xml(document, limits, "working document")
    fold_results(root, folds)
    return assemble_response(root, request_id, last_results, max_bytes)


def assemble_response(root: etree._Element, request_id: str, last_results: Sequence[bytes] | None = None,
                      max_bytes: int | None = None) -> bytes:
    """The succeeded `<vnml-response requestId=… status=…>` around the project without its reference data.

    Written piece by piece rather than from a copy of the project, so a 10 MiB request does not hold a
    second tree. With `last_results`, the last group's results go straight from their bytes into the
    response (no later group needs them in the working document): the same bytes `apply_results`
    followed by this function would give. With `max_bytes`, a response that would pass it fails with
    ResponseTooLarge as soon as its parts do: a response is stored only if GetResults can return it.
    """
    project = root.find("project")
    if project is None:
        return serialize(etree.Element(RESPONSE_TAG, requestId=request_id, status=Status.SUCCEEDED))
    shell = etree.Element(RESPONSE_TAG, requestId=request_id, status=Status.SUCCEEDED)
    twin = etree.SubElement(shell, "project", attrib={str(k): str(v) for k, v in project.attrib.items()})
    twin.text = (project.text or "") + _MARK
    head, end = serialize(shell).split(_MARK.encode())
    groups = _groups(root)
    last = groups[-1] if last_results is not None and groups else None
    parts = [head]
    size = len(head) + len(end)
    for child in project:
        if isinstance(child.tag, str) and child.tag in REFERENCE_TAGS:
            continue
        if child is last and last_results is not None:
            parts.append(_group_with_results(child, len(groups) - 1, last_results))
        else:
            parts.append(etree.tostring(child, encoding="UTF-8"))
        size += len(parts[-1])
        if max_bytes is not None and size > max_bytes:
            raise ResponseTooLarge(f"the response would be more than {max_bytes} bytes "
                                   f"({RESPONSE_PAYLOAD_FACTOR} x PAYLOAD_MAX_BYTES), more than GetResults can "
                                   f"return; make the results smaller or raise PAYLOAD_MAX_BYTES on every service",
                                   {"maxBytes": str(max_bytes)})
    parts.append(end)
    return b"".join(parts)


# A marker that cannot occur in XML text (it is split out of the serialised shell again).
_MARK = "\ue000vn-splice\ue000"


def _group_with_results(group: etree._Element, group_index: int, results: Sequence[bytes]) -> bytes:
    """A group serialised with its valuations replaced by `results`, one parsed at a time."""
    shell = etree.Element(group.tag, attrib={str(k): str(v) for k, v in group.attrib.items() if k != "use"})
    shell.text = group.text
    shell.tail = group.tail
    old = _valuations(group)
    tail = old[0].tail if old else None
    spliced = False
    for child in group:
        if isinstance(child.tag, str) and child.tag == "valuation":
            if not spliced:
                marker = etree.SubElement(shell, "splice")
                marker.text = _MARK
                spliced = True
            continue
        shell.append(copy.copy(child))
    if not spliced:
        marker = etree.SubElement(shell, "splice")
        marker.text = _MARK
    before, after = etree.tostring(shell, encoding="UTF-8").split(b"<splice>" + _MARK.encode() + b"</splice>")
    parts = [before]
    for position, data in enumerate(results, 1):
        valuation = result_valuation(data, group_index, position)
        valuation.tail = tail
        parts.append(etree.tostring(valuation, encoding="UTF-8"))
    parts.append(after)
    return b"".join(parts)
