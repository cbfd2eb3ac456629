"""Merging local over remote elements, and finding the element of a fetched document that an href means."""

from __future__ import annotations

import copy
from collections.abc import Iterable

from lxml import etree

from vnvs.hydration.xpaths import compile_xpath, is_element, namespaces


def _is_blank(text: str | None) -> bool:
    return text is None or not text.strip()


def _key(element: etree._Element, attribute: str) -> tuple[str, str] | None:
    value = element.get(attribute)
    return None if value is None else (str(element.tag), value)


def _match_children(local: list[etree._Element], remote: list[etree._Element]) -> dict[int, int]:
    """Local child index -> remote child index: by (tag, name), then (tag, id), then (tag, position)."""
    pairs: dict[int, int] = {}
    taken: set[int] = set()
    for attribute in ("name", "id"):
        index: dict[tuple[str, str], int] = {}
        for position, child in enumerate(remote):
            key = _key(child, attribute)
            if key is not None and position not in taken:
                index.setdefault(key, position)
        for position, child in enumerate(local):
            key = _key(child, attribute)
            if position in pairs or key is None or key not in index or index[key] in taken:
                continue
            pairs[position] = index.pop(key)
            taken.add(pairs[position])
    # Position matching only for children that carry no name/id: a named local child that found no
    # namesake is a new child, not a rename of whatever sits at its position.
    by_tag: dict[str, list[int]] = {}
    for position, child in enumerate(remote):
        by_tag.setdefault(str(child.tag), []).append(position)
    seen: dict[str, int] = {}
    for position, child in enumerate(local):
        tag = str(child.tag)
        ordinal = seen.get(tag, 0)
        seen[tag] = ordinal + 1
        if position in pairs or child.get("name") is not None or child.get("id") is not None:
            continue
        candidates = by_tag.get(tag, [])
        if ordinal < len(candidates) and candidates[ordinal] not in taken:
            pairs[position] = candidates[ordinal]
            taken.add(candidates[ordinal])
    return pairs


def merge(local: etree._Element, remote: etree._Element) -> etree._Element:
    """A new element: remote's tag, remote attributes under local ones, local text unless blank, merged children.

    `local` is consumed (its children move into the result); `remote` is only read.
    """
    result = etree.Element(remote.tag, nsmap=namespaces(remote))
    for name, value in remote.attrib.items():
        result.set(name, value)
    for name, value in local.attrib.items():
        result.set(name, value)
    result.text = remote.text if _is_blank(local.text) else local.text
    local_children = [child for child in local if is_element(child)]
    remote_children = [child for child in remote if is_element(child)]
    pairs = _match_children(local_children, remote_children)
    ordinal = 0
    for child in list(local):
        if not is_element(child):
            result.append(child)  # comments and PIs stay where the author put them
            continue
        partner = pairs.get(ordinal)
        ordinal += 1
        if partner is None:
            result.append(child)
            continue
        merged = merge(child, remote_children[partner])
        merged.tail = child.tail
        result.append(merged)
    matched_remote = set(pairs.values())
    _append_copies(result, (c for i, c in enumerate(remote_children) if i not in matched_remote))
    return result


def _append_copies(parent: etree._Element, children: Iterable[etree._Element]) -> None:
    for child in children:
        duplicate = copy.deepcopy(child)
        parent.append(duplicate)


def find_match(fetched: etree._Element, local: etree._Element, local_path: str) -> list[etree._Element]:
    """Candidates in `fetched` for `local`: same absolute path, else the single same tag+name/id/tag."""
    try:
        found = compile_xpath(local_path)(fetched.getroottree())
    except etree.XPathError:
        found = []
    items = found if isinstance(found, list) else []
    at_path = [e for e in items if isinstance(e, etree._Element) and e.tag == local.tag]
    if len(at_path) == 1:
        return at_path
    same_tag = [e for e in fetched.iter(str(local.tag)) if is_element(e)]
    for attribute in ("name", "id"):
        value = local.get(attribute)
        if value is None:
            continue
        keyed = [e for e in same_tag if e.get(attribute) == value]
        if len(keyed) == 1:
            return keyed
    return same_tag
