"""Receiving Submit without a second copy of its body on the event loop.

The protobuf runtime copies a bytes field into the message's arena when it parses, and again into a new
`bytes` each time the field is read; the message lives until the call ends. For a 10 MiB body that is
twice the payload per Submit in flight. `read_submit` instead walks the top-level fields of the
serialised request (the wire format: a varint key, then a varint, 4 or 8 bytes, or a length and that
many bytes), notes where the body (field 1, the last one wins as in protobuf) lies, and parses the small
rest as an ordinary `SubmitRequest`.

The body is copied out of the received message later, once, by `SubmitCall.take_body`, which lets the
message go; vnapi does it on its check thread for a large body. The deserializer runs on the event loop,
and bodies that arrive together make their calls ready in the same loop iteration, so a copy made there
(10 MiB into freshly mapped pages, 20-40 ms on a busy machine) would be made for all of them back to
back before any other call or timer ran (docs/performance.md).
"""

from __future__ import annotations

from typing import Any

import grpc
from google.protobuf.message import DecodeError

from vn.v1 import valuation_pb2, valuation_pb2_grpc

XML_FIELD = valuation_pb2.SubmitRequest.DESCRIPTOR.fields_by_name["xml"].number
_LENGTH_DELIMITED = 2
_FIXED = {1: 8, 5: 4}  # wire type -> bytes


class SubmitCall:
    """A Submit as received: every field but the body in `request`; the body still inside the received
    message until `take_body` copies it out."""

    __slots__ = ("_message", "_start", "_stop", "request")

    def __init__(self, request: valuation_pb2.SubmitRequest, message: bytes, start: int, stop: int) -> None:
        self.request = request
        self._message: bytes | None = message
        self._start, self._stop = start, stop

    @classmethod
    def of(cls, request: valuation_pb2.SubmitRequest, body: bytes) -> SubmitCall:
        """A call whose body is already a `bytes` of its own."""
        return cls(request, body, 0, len(body))

    @property
    def size(self) -> int:
        """The body's length in bytes."""
        return self._stop - self._start

    def take_body(self) -> bytes:
        """The body as a `bytes` of its own (a copy unless it is one already); the message is let go. Once."""
        message, self._message = self._message, None
        if message is None:
            raise RuntimeError("the body of this Submit was taken already")
        if self._start == 0 and self._stop == len(message):
            return message
        return message[self._start:self._stop]


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise DecodeError("truncated or overlong varint in SubmitRequest")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def read_submit(data: bytes) -> SubmitCall:
    """Split a serialised SubmitRequest into where its body lies and the rest, parsed (DecodeError when
    malformed)."""
    rest: list[bytes] = []
    body = (0, 0)
    pos = 0
    while pos < len(data):
        start = pos
        key, pos = _varint(data, pos)
        wire = key & 7
        if wire == 0:
            _, pos = _varint(data, pos)
        elif wire in _FIXED:
            pos += _FIXED[wire]
        elif wire == _LENGTH_DELIMITED:
            length, pos = _varint(data, pos)
            if key >> 3 == XML_FIELD and pos + length <= len(data):
                body = (pos, pos + length)
                pos += length
                continue
            pos += length
        else:
            raise DecodeError(f"unsupported wire type {wire} in SubmitRequest")
        if pos > len(data):
            raise DecodeError("truncated SubmitRequest")
        rest.append(data[start:pos])
    return SubmitCall(valuation_pb2.SubmitRequest.FromString(b"".join(rest)), data, *body)


class _Handlers:
    """Stands in for a server to collect the generated handlers of a service."""

    def __init__(self) -> None:
        self.name = ""
        self.handlers: dict[str, Any] = {}

    def add_generic_rpc_handlers(self, handlers: Any) -> None:
        pass

    def add_registered_method_handlers(self, name: str, handlers: dict[str, Any]) -> None:
        self.name, self.handlers = name, dict(handlers)


def add_valuation_service(servicer: valuation_pb2_grpc.ValuationServiceServicer, server: grpc.aio.Server) -> None:
    """The generated registration, with Submit's request read by `read_submit`."""
    collected = _Handlers()
    valuation_pb2_grpc.add_ValuationServiceServicer_to_server(servicer, collected)  # type: ignore[no-untyped-call]
    handlers = collected.handlers
    handlers["Submit"] = handlers["Submit"]._replace(request_deserializer=read_submit)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(collected.name, handlers),))
    server.add_registered_method_handlers(collected.name, handlers)
