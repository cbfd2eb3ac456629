"""Stream messages travel as Redis field maps: protobuf messages <-> {jsonName: str} dictionaries."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

if TYPE_CHECKING:  # the redis package costs ~80 ms to import; the SDK and `vn` need none of it
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


# Per message class: (json name, attribute name, how a wire string becomes the value). Built once,
# because walking descriptors for every entry showed up in the profiles of the busiest loops.
_Layout = tuple[tuple[str, str, Callable[[str], Any]], ...]
_LAYOUTS: dict[type[Message], _Layout] = {}
_OPTIONAL: dict[type[Message], tuple[tuple[str, str], ...]] = {}  # fields with presence: (json name, name)


def _layout(cls: type[Message]) -> _Layout:
    layout = _LAYOUTS.get(cls)
    if layout is None:
        layout = tuple((f.json_name, f.name, _converter(f.type)) for f in cls.DESCRIPTOR.fields)
        _LAYOUTS[cls] = layout
    return layout


def _converter(field_type: int) -> Callable[[str], Any]:
    if field_type in _INT_TYPES:
        return int
    if field_type == FieldDescriptor.TYPE_BOOL:
        return lambda raw: raw == "True"
    return str


def _optional(cls: type[Message]) -> tuple[tuple[str, str], ...]:
    optional = _OPTIONAL.get(cls)
    if optional is None:
        optional = tuple((f.json_name, f.name) for f in cls.DESCRIPTOR.fields if f.has_presence)
        _OPTIONAL[cls] = optional
    return optional


def to_fields(message: Message) -> dict[FieldT, EncodableT]:
    """All scalar fields of `message` keyed by JSON name, every value a string (defaults included),
    except `optional` fields that are not set: those are left out of the entry."""
    cls = type(message)
    fields: dict[FieldT, EncodableT] = {json_name: str(getattr(message, name)) for json_name, name, _ in _layout(cls)}
    for json_name, name in _optional(cls):
        if not message.HasField(name):
            del fields[json_name]
    return fields


def from_fields(cls: type[M], fields: Mapping[bytes | str, bytes | str]) -> M:
    """Build `cls` from a stream entry's field map; unknown fields are ignored, missing ones default."""
    decoded = {text(k): text(v) for k, v in fields.items()}
    values: dict[str, Any] = {}
    for json_name, name, convert in _layout(cls):
        raw = decoded.get(json_name)
        if raw:
            values[name] = convert(raw)
    return cls(**values)


def text(value: bytes | str) -> str:
    """A Redis reply value as text (replies are bytes unless the client decodes them)."""
    return value.decode() if isinstance(value, bytes) else value
