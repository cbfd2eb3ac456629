"""Stream messages travel as Redis field maps: protobuf messages <-> {jsonName: str} dictionaries."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from redis.typing import EncodableT, FieldT

M = TypeVar("M", bound=Message)

_INT_TYPES = {
    FieldDescriptor.TYPE_INT32,
    FieldDescriptor.TYPE_INT64,
    FieldDescriptor.TYPE_UINT32,
    FieldDescriptor.TYPE_UINT64,
    FieldDescriptor.TYPE_SINT32,
    FieldDescriptor.TYPE_SINT64,
}


def to_fields(message: Message) -> dict[FieldT, EncodableT]:
    """All scalar fields of `message` keyed by JSON name, every value a string (defaults included)."""
    fields: dict[FieldT, EncodableT] = {}
    for field in message.DESCRIPTOR.fields:
        fields[field.json_name] = str(getattr(message, field.name))
    return fields


def from_fields(cls: type[M], fields: Mapping[bytes | str, bytes | str]) -> M:
    """Build `cls` from a stream entry's field map; unknown fields are ignored, missing ones default."""
    decoded = {_text(k): _text(v) for k, v in fields.items()}
    message = cls()
    for field in cls.DESCRIPTOR.fields:
        raw = decoded.get(field.json_name)
        if raw is None or raw == "":
            continue
        if field.type in _INT_TYPES:
            setattr(message, field.name, int(raw))
        elif field.type == FieldDescriptor.TYPE_BOOL:
            setattr(message, field.name, raw == "True")
        else:
            setattr(message, field.name, raw)
    return message


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
