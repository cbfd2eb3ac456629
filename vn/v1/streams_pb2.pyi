from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class IngestEntry(_message.Message):
    __slots__ = ("request_id", "trace_id", "traceparent")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    TRACEPARENT_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    trace_id: str
    traceparent: str
    def __init__(self, request_id: _Optional[str] = ..., trace_id: _Optional[str] = ..., traceparent: _Optional[str] = ...) -> None: ...

class LifecycleEvent(_message.Message):
    __slots__ = ("request_id", "status", "group_index", "timestamp", "detail", "sequence")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    GROUP_INDEX_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    status: str
    group_index: int
    timestamp: str
    detail: str
    sequence: int
    def __init__(self, request_id: _Optional[str] = ..., status: _Optional[str] = ..., group_index: _Optional[int] = ..., timestamp: _Optional[str] = ..., detail: _Optional[str] = ..., sequence: _Optional[int] = ...) -> None: ...

class TaskDispatch(_message.Message):
    __slots__ = ("request_id", "group_index", "group_name", "task_id", "valuation_name", "payload_key", "result_key", "attempt", "updates_stream", "trace_id", "max_deliveries", "payload", "traceparent")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_INDEX_FIELD_NUMBER: _ClassVar[int]
    GROUP_NAME_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    VALUATION_NAME_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_KEY_FIELD_NUMBER: _ClassVar[int]
    RESULT_KEY_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    UPDATES_STREAM_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    MAX_DELIVERIES_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    TRACEPARENT_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    group_index: int
    group_name: str
    task_id: str
    valuation_name: str
    payload_key: str
    result_key: str
    attempt: int
    updates_stream: str
    trace_id: str
    max_deliveries: int
    payload: str
    traceparent: str
    def __init__(self, request_id: _Optional[str] = ..., group_index: _Optional[int] = ..., group_name: _Optional[str] = ..., task_id: _Optional[str] = ..., valuation_name: _Optional[str] = ..., payload_key: _Optional[str] = ..., result_key: _Optional[str] = ..., attempt: _Optional[int] = ..., updates_stream: _Optional[str] = ..., trace_id: _Optional[str] = ..., max_deliveries: _Optional[int] = ..., payload: _Optional[str] = ..., traceparent: _Optional[str] = ...) -> None: ...

class TaskUpdate(_message.Message):
    __slots__ = ("request_id", "group_index", "task_id", "status", "result_key", "attempt", "duration_ms", "error", "deliveries")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_INDEX_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    RESULT_KEY_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    DELIVERIES_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    group_index: int
    task_id: str
    status: str
    result_key: str
    attempt: int
    duration_ms: int
    error: str
    deliveries: int
    def __init__(self, request_id: _Optional[str] = ..., group_index: _Optional[int] = ..., task_id: _Optional[str] = ..., status: _Optional[str] = ..., result_key: _Optional[str] = ..., attempt: _Optional[int] = ..., duration_ms: _Optional[int] = ..., error: _Optional[str] = ..., deliveries: _Optional[int] = ...) -> None: ...
