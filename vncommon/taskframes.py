"""The framed task protocol of warm executors (framed-v1, docs/executors.md), written once for both ends.

A frame is a 12-byte prefix, a JSON header and a body:

    b"VNF1" | header length (4 bytes, big-endian) | body length (4 bytes, big-endian) | header | body

The worker sends a `task` frame (header: the task's VN_* fields, body: the task XML); the process answers
with a `result` frame (`ok` true, body: result bytes) or an `error` frame (`ok` false, `error`: text).
When it has started, before any task, the process announces itself with a `hello` frame. The marker
makes output that is not a frame (a stray print, a crash message) fail at once instead of being read as
a length.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from typing import Any, BinaryIO

PROTOCOL = "framed-v1"
# Set in a persistent process's environment: the helper (vncommon.scripthost) speaks frames, not §9 one-shot.
PROTOCOL_ENV = "VN_SCRIPT_PROTOCOL"
MAGIC = b"VNF1"
PREFIX = struct.Struct(">4sII")
MAX_HEADER_BYTES = 64 * 1024
# Bodies are bounded by the receiver (the worker passes VNAS_MAX_RESULT_BYTES); this is the absolute cap.
MAX_BODY_BYTES = 1 << 31

HELLO = "hello"
TASK = "task"
RESULT = "result"
ERROR = "error"
# The task's identity as a task frame's header carries it (the one-shot contract puts them in the environment).
TASK_ENV_FIELDS = ("VN_REQUEST_ID", "VN_GROUP_INDEX", "VN_TASK_ID", "VN_ATTEMPT", "VN_VALUATION_NAME", "VN_TRACE_ID")


class FrameError(Exception):
    """Bytes that are not a framed-v1 frame; the message says what was wrong."""


class BodyTooLarge(FrameError):
    """A frame announces a body larger than the receiver accepts (its body is not read)."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"frame body of {size} bytes exceeds the limit of {limit} bytes")
        self.size = size
        self.limit = limit


@dataclass(frozen=True, slots=True)
class Frame:
    kind: str
    header: dict[str, Any] = field(default_factory=dict)
    body: bytes = b""


def encode(kind: str, body: bytes = b"", **header: Any) -> bytes:
    """One frame: the prefix, the header (with `type`) as compact JSON, the body."""
    head = json.dumps({"type": kind, **header}, separators=(",", ":"), ensure_ascii=False).encode()
    if len(head) > MAX_HEADER_BYTES:
        raise FrameError(f"frame header of {len(head)} bytes exceeds {MAX_HEADER_BYTES} bytes")
    return PREFIX.pack(MAGIC, len(head), len(body)) + head + body


def task_frame(task_xml: bytes, env: dict[str, str]) -> bytes:
    return encode(TASK, task_xml, env={name: env[name] for name in TASK_ENV_FIELDS if name in env})


def result_frame(result: bytes, cpu_ms: float) -> bytes:
    """A result, with the CPU time the handler used on it (the host's own overhead not included)."""
    return encode(RESULT, result, ok=True, cpuMs=round(cpu_ms, 3))


def error_frame(error: str, exception: str = "", traceback: str = "") -> bytes:
    """A failed task: `error` is the attempt's error text; `exception` the type the handler raised, with
    the tail of its `traceback` (sent in the frame, so it cannot arrive after the reply as stderr may)."""
    if exception:
        return encode(ERROR, ok=False, error=error, exception=exception, traceback=traceback)
    return encode(ERROR, ok=False, error=error)


def hello_frame(pid: int) -> bytes:
    return encode(HELLO, protocol=PROTOCOL, pid=pid)


def parse_prefix(prefix: bytes, max_body: int = MAX_BODY_BYTES) -> tuple[int, int]:
    """Header and body lengths from a 12-byte prefix; FrameError when it is not one."""
    magic, header_len, body_len = PREFIX.unpack(prefix)
    if magic != MAGIC:
        raise FrameError(f"output is not a {PROTOCOL} frame: it starts with {prefix[:16]!r}")
    if header_len > MAX_HEADER_BYTES:
        raise FrameError(f"frame header of {header_len} bytes exceeds {MAX_HEADER_BYTES} bytes")
    if body_len > max_body:
        raise BodyTooLarge(body_len, max_body)
    return header_len, body_len


def parse_header(data: bytes, body: bytes) -> Frame:
    try:
        header = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FrameError(f"frame header is not JSON: {exc}") from None
    if not isinstance(header, dict) or not isinstance(header.get("type"), str):
        raise FrameError("frame header must be a JSON object with a string 'type'")
    return Frame(header.pop("type"), header, body)


class FrameReader:
    """Incremental decoding: feed bytes as they arrive, take whole frames out."""

    def __init__(self, max_body: int = MAX_BODY_BYTES) -> None:
        self._buffer = bytearray()
        self._max_body = max_body

    def feed(self, chunk: bytes) -> None:
        self._buffer += chunk

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def preview(self) -> bytes:
        return bytes(self._buffer[:40])

    def next_frame(self) -> Frame | None:
        """The next whole frame, or None until more bytes arrive; FrameError on bytes that are not one."""
        if len(self._buffer) < PREFIX.size:
            if self._buffer and not MAGIC.startswith(bytes(self._buffer[:len(MAGIC)])):
                raise FrameError(f"output is not a {PROTOCOL} frame: it starts with {self.preview()!r}")
            return None
        header_len, body_len = parse_prefix(bytes(self._buffer[:PREFIX.size]), self._max_body)
        end = PREFIX.size + header_len + body_len
        if len(self._buffer) < end:
            return None
        head = bytes(self._buffer[PREFIX.size:PREFIX.size + header_len])
        body = bytes(self._buffer[PREFIX.size + header_len:end])
        del self._buffer[:end]
        return parse_header(head, body)


def read_frame(stream: BinaryIO) -> Frame | None:
    """The next frame from a blocking stream; None at a clean end of input (between frames)."""
    prefix = _read_exactly(stream, PREFIX.size, allow_eof=True)
    if prefix is None:
        return None
    header_len, body_len = parse_prefix(prefix)
    head = _read_exactly(stream, header_len)
    body = _read_exactly(stream, body_len)
    assert head is not None and body is not None
    return parse_header(head, body)


def _read_exactly(stream: BinaryIO, size: int, allow_eof: bool = False) -> bytes | None:
    data = bytearray()
    while len(data) < size:
        chunk = stream.read(size - len(data))
        if not chunk:
            if allow_eof and not data:
                return None
            raise FrameError(f"input ended inside a frame ({len(data)} of {size} bytes)")
        data += chunk
    return bytes(data)
