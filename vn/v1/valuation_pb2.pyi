import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from vn.v1 import streams_pb2 as _streams_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RequestStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REQUEST_STATUS_UNSPECIFIED: _ClassVar[RequestStatus]
    REQUEST_STATUS_RECEIVED: _ClassVar[RequestStatus]
    REQUEST_STATUS_STARTED: _ClassVar[RequestStatus]
    REQUEST_STATUS_SUCCEEDED: _ClassVar[RequestStatus]
    REQUEST_STATUS_FAILED: _ClassVar[RequestStatus]
    REQUEST_STATUS_CANCELLED: _ClassVar[RequestStatus]

class Priority(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRIORITY_UNSPECIFIED: _ClassVar[Priority]
    PRIORITY_HIGH: _ClassVar[Priority]
    PRIORITY_NORMAL: _ClassVar[Priority]
    PRIORITY_BATCH: _ClassVar[Priority]
REQUEST_STATUS_UNSPECIFIED: RequestStatus
REQUEST_STATUS_RECEIVED: RequestStatus
REQUEST_STATUS_STARTED: RequestStatus
REQUEST_STATUS_SUCCEEDED: RequestStatus
REQUEST_STATUS_FAILED: RequestStatus
REQUEST_STATUS_CANCELLED: RequestStatus
PRIORITY_UNSPECIFIED: Priority
PRIORITY_HIGH: Priority
PRIORITY_NORMAL: Priority
PRIORITY_BATCH: Priority

class SubmitRequest(_message.Message):
    __slots__ = ("xml", "sync", "idempotency_key", "metadata", "content_type", "trace_id", "deadline_ms", "priority")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    XML_FIELD_NUMBER: _ClassVar[int]
    SYNC_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_MS_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    xml: bytes
    sync: bool
    idempotency_key: str
    metadata: _containers.ScalarMap[str, str]
    content_type: str
    trace_id: str
    deadline_ms: int
    priority: Priority
    def __init__(self, xml: _Optional[bytes] = ..., sync: _Optional[bool] = ..., idempotency_key: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ..., content_type: _Optional[str] = ..., trace_id: _Optional[str] = ..., deadline_ms: _Optional[int] = ..., priority: _Optional[_Union[Priority, str]] = ...) -> None: ...

class SubmitResponse(_message.Message):
    __slots__ = ("request_id", "status", "response_xml", "failure_detail", "deduplicated", "timed_out")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_XML_FIELD_NUMBER: _ClassVar[int]
    FAILURE_DETAIL_FIELD_NUMBER: _ClassVar[int]
    DEDUPLICATED_FIELD_NUMBER: _ClassVar[int]
    TIMED_OUT_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    status: RequestStatus
    response_xml: bytes
    failure_detail: str
    deduplicated: bool
    timed_out: bool
    def __init__(self, request_id: _Optional[str] = ..., status: _Optional[_Union[RequestStatus, str]] = ..., response_xml: _Optional[bytes] = ..., failure_detail: _Optional[str] = ..., deduplicated: _Optional[bool] = ..., timed_out: _Optional[bool] = ...) -> None: ...

class GetStatusRequest(_message.Message):
    __slots__ = ("request_id",)
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    def __init__(self, request_id: _Optional[str] = ...) -> None: ...

class Progress(_message.Message):
    __slots__ = ("groups_completed", "tasks_expected", "tasks_completed", "tasks_failed")
    GROUPS_COMPLETED_FIELD_NUMBER: _ClassVar[int]
    TASKS_EXPECTED_FIELD_NUMBER: _ClassVar[int]
    TASKS_COMPLETED_FIELD_NUMBER: _ClassVar[int]
    TASKS_FAILED_FIELD_NUMBER: _ClassVar[int]
    groups_completed: int
    tasks_expected: int
    tasks_completed: int
    tasks_failed: int
    def __init__(self, groups_completed: _Optional[int] = ..., tasks_expected: _Optional[int] = ..., tasks_completed: _Optional[int] = ..., tasks_failed: _Optional[int] = ...) -> None: ...

class GetStatusResponse(_message.Message):
    __slots__ = ("request_id", "status", "current_group", "group_count", "received_at", "started_at", "completed_at", "progress", "failure_detail", "priority", "deadline_at")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CURRENT_GROUP_FIELD_NUMBER: _ClassVar[int]
    GROUP_COUNT_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_AT_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_AT_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    FAILURE_DETAIL_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_AT_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    status: RequestStatus
    current_group: int
    group_count: int
    received_at: _timestamp_pb2.Timestamp
    started_at: _timestamp_pb2.Timestamp
    completed_at: _timestamp_pb2.Timestamp
    progress: Progress
    failure_detail: str
    priority: Priority
    deadline_at: _timestamp_pb2.Timestamp
    def __init__(self, request_id: _Optional[str] = ..., status: _Optional[_Union[RequestStatus, str]] = ..., current_group: _Optional[int] = ..., group_count: _Optional[int] = ..., received_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., completed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., progress: _Optional[_Union[Progress, _Mapping]] = ..., failure_detail: _Optional[str] = ..., priority: _Optional[_Union[Priority, str]] = ..., deadline_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetResultsRequest(_message.Message):
    __slots__ = ("request_id",)
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    def __init__(self, request_id: _Optional[str] = ...) -> None: ...

class GetResultsResponse(_message.Message):
    __slots__ = ("request_id", "response_xml")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_XML_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    response_xml: bytes
    def __init__(self, request_id: _Optional[str] = ..., response_xml: _Optional[bytes] = ...) -> None: ...

class WatchRequest(_message.Message):
    __slots__ = ("request_id",)
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    def __init__(self, request_id: _Optional[str] = ...) -> None: ...

class WatchResponse(_message.Message):
    __slots__ = ("event",)
    EVENT_FIELD_NUMBER: _ClassVar[int]
    event: _streams_pb2.LifecycleEvent
    def __init__(self, event: _Optional[_Union[_streams_pb2.LifecycleEvent, _Mapping]] = ...) -> None: ...

class CancelRequest(_message.Message):
    __slots__ = ("request_id",)
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    def __init__(self, request_id: _Optional[str] = ...) -> None: ...

class CancelResponse(_message.Message):
    __slots__ = ("request_id", "previous_status", "status")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_STATUS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    previous_status: RequestStatus
    status: RequestStatus
    def __init__(self, request_id: _Optional[str] = ..., previous_status: _Optional[_Union[RequestStatus, str]] = ..., status: _Optional[_Union[RequestStatus, str]] = ...) -> None: ...
