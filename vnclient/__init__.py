"""The vnml client SDK: `ValuationClient` talks to vnapi; errors are the `vncommon.errors` classes."""

from vn.v1.streams_pb2 import LifecycleEvent
from vn.v1.valuation_pb2 import GetStatusResponse, SubmitResponse
from vnclient._client import (
    VALUATION_SERVICE,
    ClientSettings,
    ValuationClient,
    translate_error,
)
from vnclient.convert import TERMINAL_EVENTS, event_to_dict, parse_detail, status_name, status_to_dict
from vncommon.errors import (
    DeadlineExceeded,
    EmptyBody,
    IdempotencyKeyReused,
    InvalidArgument,
    InvalidVnml,
    MalformedXml,
    PayloadTooLarge,
    RequestExpired,
    RequestFailed,
    RequestNotFound,
    ResultNotReady,
    Unauthenticated,
    Unavailable,
    UnsupportedMediaType,
    VnError,
)

__all__ = [
    "TERMINAL_EVENTS",
    "VALUATION_SERVICE",
    "ClientSettings",
    "DeadlineExceeded",
    "EmptyBody",
    "GetStatusResponse",
    "IdempotencyKeyReused",
    "InvalidArgument",
    "InvalidVnml",
    "LifecycleEvent",
    "MalformedXml",
    "PayloadTooLarge",
    "RequestExpired",
    "RequestFailed",
    "RequestNotFound",
    "ResultNotReady",
    "SubmitResponse",
    "Unauthenticated",
    "Unavailable",
    "UnsupportedMediaType",
    "ValuationClient",
    "VnError",
    "event_to_dict",
    "parse_detail",
    "status_name",
    "status_to_dict",
    "translate_error",
]
