"""Frames between vnvs and its hydration processes: a JSON header, then raw byte blobs (no pickle).

A frame is a 4-byte big-endian header length, the UTF-8 JSON header (which lists the blob lengths
under "blobs"), then the blobs back to back. Documents travel as the bytes they are, never re-encoded.
"""

from __future__ import annotations

import asyncio
import json
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from lxml import etree

from vncommon.xmlsafe import MAX_NODES, XmlLimits
from vnvs.hydration.budget import BYTES_PER_NODE
from vnvs.hydration.settings import HydrationSettings

Header = dict[str, Any]
_LENGTH = struct.Struct("!I")
# The header holds task names and error messages, never documents: anything larger is a broken peer.
MAX_HEADER_BYTES = 64 * 1024 * 1024


class FrameError(Exception):
    """The peer sent something that is not a frame, or the stream ended inside one."""


def encode(header: Header, blobs: Sequence[bytes] = ()) -> list[bytes]:
    """The parts of one frame, to be written in order."""
    head = json.dumps({**header, "blobs": [len(blob) for blob in blobs]}, separators=(",", ":")).encode()
    return [_LENGTH.pack(len(head)), head, *blobs]


def _header(raw: bytes) -> tuple[Header, list[int]]:
    try:
        header = json.loads(raw)
        sizes = [int(size) for size in header.pop("blobs")]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise FrameError(f"bad frame header ({exc})") from None
    if not isinstance(header, dict):
        raise FrameError("bad frame header (not an object)")
    return header, sizes


def _length(raw: bytes) -> int:
    (size,) = _LENGTH.unpack(raw)
    if size > MAX_HEADER_BYTES:
        raise FrameError(f"frame header of {size} bytes is larger than {MAX_HEADER_BYTES}")
    return int(size)


def read_sync(stream: IO[bytes]) -> tuple[Header, list[bytes]] | None:
    """One frame from a blocking stream; None when the stream ended between frames."""
    prefix = stream.read(_LENGTH.size)  # a buffered read returns short only at the end of the stream
    if not prefix:
        return None
    if len(prefix) != _LENGTH.size:
        raise FrameError("stream ended inside a frame")
    header, sizes = _header(_exactly(stream, _length(prefix)))
    return header, [_exactly(stream, size) for size in sizes]


def _exactly(stream: IO[bytes], size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise FrameError("stream ended inside a frame")
    return data


def write_sync(stream: IO[bytes], header: Header, blobs: Sequence[bytes] = ()) -> None:
    for part in encode(header, blobs):
        stream.write(part)
    stream.flush()


async def read_async(reader: asyncio.StreamReader) -> tuple[Header, list[bytes]]:
    """One frame from an asyncio stream; IncompleteReadError when the peer went away."""
    size = _length(await reader.readexactly(_LENGTH.size))
    header, sizes = _header(await reader.readexactly(size))
    return header, [await reader.readexactly(blob) for blob in sizes]


def folds_to_wire(folds: Sequence[tuple[int, Sequence[bytes]]]) -> tuple[list[list[int]], list[bytes]]:
    """Earlier groups' results for a job: ([group index, result count] per group, the results in order)."""
    return [[index, len(results)] for index, results in folds], [blob for _, results in folds for blob in results]


def folds_from_wire(raw: Sequence[Sequence[int]], blobs: Sequence[bytes]) -> list[tuple[int, Sequence[bytes]]]:
    """The inverse of `folds_to_wire`; `blobs` start with the folds' results (more may follow)."""
    folds, offset = [], 0
    for index, count in raw:
        folds.append((int(index), blobs[offset:offset + int(count)]))
        offset += int(count)
    return folds


def settings_to_wire(settings: HydrationSettings) -> Header:
    """The settings a hydration process needs, as JSON values."""
    return {
        "fileRoots": [str(root) for root in settings.file_roots],
        "s3Buckets": list(settings.s3_buckets),
        "maxFetchBytes": settings.max_fetch_bytes,
        "maxFetches": settings.max_fetches,
        "maxClonesPerGroup": settings.max_clones_per_group,
        "maxGroupTaskBytes": settings.max_group_task_bytes,
        "maxPasses": settings.max_passes,
    }


def settings_from_wire(raw: Header) -> HydrationSettings:
    return HydrationSettings(
        file_roots=tuple(Path(root) for root in raw["fileRoots"]),
        s3_buckets=tuple(raw["s3Buckets"]),
        max_fetch_bytes=int(raw["maxFetchBytes"]),
        max_fetches=int(raw["maxFetches"]),
        max_clones_per_group=int(raw["maxClonesPerGroup"]),
        max_group_task_bytes=int(raw["maxGroupTaskBytes"]),
        max_passes=int(raw["maxPasses"]),
    )


def serialize_document(root: etree._Element) -> bytes:
    """The whole working document, with the processing instructions around the root (the variables)."""
    return etree.tostring(root.getroottree(), xml_declaration=True, encoding="UTF-8")


def document_limits(max_group_task_bytes: int) -> XmlLimits:
    """Node limit for a working document: the request's own, plus what hydration may have copied into it."""
    return XmlLimits(max_nodes=MAX_NODES + max_group_task_bytes // BYTES_PER_NODE)
