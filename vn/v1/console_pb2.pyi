import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from vn.v1 import valuation_pb2 as _valuation_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ListRequestsRequest(_message.Message):
    __slots__ = ("limit", "status", "id_contains")
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ID_CONTAINS_FIELD_NUMBER: _ClassVar[int]
    limit: int
    status: str
    id_contains: str
    def __init__(self, limit: _Optional[int] = ..., status: _Optional[str] = ..., id_contains: _Optional[str] = ...) -> None: ...

class RequestSummary(_message.Message):
    __slots__ = ("request_id", "status", "priority", "group_count", "groups_completed", "tasks_total", "tasks_completed", "received_at", "started_at", "completed_at", "retry_count")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    GROUP_COUNT_FIELD_NUMBER: _ClassVar[int]
    GROUPS_COMPLETED_FIELD_NUMBER: _ClassVar[int]
    TASKS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    TASKS_COMPLETED_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_AT_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_AT_FIELD_NUMBER: _ClassVar[int]
    RETRY_COUNT_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    status: _valuation_pb2.RequestStatus
    priority: str
    group_count: int
    groups_completed: int
    tasks_total: int
    tasks_completed: int
    received_at: _timestamp_pb2.Timestamp
    started_at: _timestamp_pb2.Timestamp
    completed_at: _timestamp_pb2.Timestamp
    retry_count: int
    def __init__(self, request_id: _Optional[str] = ..., status: _Optional[_Union[_valuation_pb2.RequestStatus, str]] = ..., priority: _Optional[str] = ..., group_count: _Optional[int] = ..., groups_completed: _Optional[int] = ..., tasks_total: _Optional[int] = ..., tasks_completed: _Optional[int] = ..., received_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., completed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., retry_count: _Optional[int] = ...) -> None: ...

class ListRequestsResponse(_message.Message):
    __slots__ = ("requests", "indexed")
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    INDEXED_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[RequestSummary]
    indexed: int
    def __init__(self, requests: _Optional[_Iterable[_Union[RequestSummary, _Mapping]]] = ..., indexed: _Optional[int] = ...) -> None: ...

class GetRequestDetailRequest(_message.Message):
    __slots__ = ("request_id", "slowest")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    SLOWEST_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    slowest: int
    def __init__(self, request_id: _Optional[str] = ..., slowest: _Optional[int] = ...) -> None: ...

class TaskAttempt(_message.Message):
    __slots__ = ("task_id", "status", "attempt", "duration_ms", "worker", "error")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    WORKER_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    status: str
    attempt: int
    duration_ms: int
    worker: str
    error: str
    def __init__(self, task_id: _Optional[str] = ..., status: _Optional[str] = ..., attempt: _Optional[int] = ..., duration_ms: _Optional[int] = ..., worker: _Optional[str] = ..., error: _Optional[str] = ...) -> None: ...

class GroupDetail(_message.Message):
    __slots__ = ("group_index", "status", "tasks_expected", "tasks_completed", "tasks_failed", "started_at", "completed_at", "tasks_recorded", "duration_ms_total", "duration_ms_max", "tasks_retried", "slowest", "troubled")
    GROUP_INDEX_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TASKS_EXPECTED_FIELD_NUMBER: _ClassVar[int]
    TASKS_COMPLETED_FIELD_NUMBER: _ClassVar[int]
    TASKS_FAILED_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_AT_FIELD_NUMBER: _ClassVar[int]
    TASKS_RECORDED_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_MAX_FIELD_NUMBER: _ClassVar[int]
    TASKS_RETRIED_FIELD_NUMBER: _ClassVar[int]
    SLOWEST_FIELD_NUMBER: _ClassVar[int]
    TROUBLED_FIELD_NUMBER: _ClassVar[int]
    group_index: int
    status: str
    tasks_expected: int
    tasks_completed: int
    tasks_failed: int
    started_at: _timestamp_pb2.Timestamp
    completed_at: _timestamp_pb2.Timestamp
    tasks_recorded: int
    duration_ms_total: int
    duration_ms_max: int
    tasks_retried: int
    slowest: _containers.RepeatedCompositeFieldContainer[TaskAttempt]
    troubled: _containers.RepeatedCompositeFieldContainer[TaskAttempt]
    def __init__(self, group_index: _Optional[int] = ..., status: _Optional[str] = ..., tasks_expected: _Optional[int] = ..., tasks_completed: _Optional[int] = ..., tasks_failed: _Optional[int] = ..., started_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., completed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., tasks_recorded: _Optional[int] = ..., duration_ms_total: _Optional[int] = ..., duration_ms_max: _Optional[int] = ..., tasks_retried: _Optional[int] = ..., slowest: _Optional[_Iterable[_Union[TaskAttempt, _Mapping]]] = ..., troubled: _Optional[_Iterable[_Union[TaskAttempt, _Mapping]]] = ...) -> None: ...

class GetRequestDetailResponse(_message.Message):
    __slots__ = ("status", "groups", "retry_count", "priority", "can_cancel")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    RETRY_COUNT_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    CAN_CANCEL_FIELD_NUMBER: _ClassVar[int]
    status: _valuation_pb2.GetStatusResponse
    groups: _containers.RepeatedCompositeFieldContainer[GroupDetail]
    retry_count: int
    priority: str
    can_cancel: bool
    def __init__(self, status: _Optional[_Union[_valuation_pb2.GetStatusResponse, _Mapping]] = ..., groups: _Optional[_Iterable[_Union[GroupDetail, _Mapping]]] = ..., retry_count: _Optional[int] = ..., priority: _Optional[str] = ..., can_cancel: _Optional[bool] = ...) -> None: ...

class GetWorkersRequest(_message.Message):
    __slots__ = ("dead_letters",)
    DEAD_LETTERS_FIELD_NUMBER: _ClassVar[int]
    dead_letters: int
    def __init__(self, dead_letters: _Optional[int] = ...) -> None: ...

class WorkerConsumer(_message.Message):
    __slots__ = ("name", "pending", "idle_ms", "inactive_ms", "live")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    IDLE_MS_FIELD_NUMBER: _ClassVar[int]
    INACTIVE_MS_FIELD_NUMBER: _ClassVar[int]
    LIVE_FIELD_NUMBER: _ClassVar[int]
    name: str
    pending: int
    idle_ms: int
    inactive_ms: int
    live: bool
    def __init__(self, name: _Optional[str] = ..., pending: _Optional[int] = ..., idle_ms: _Optional[int] = ..., inactive_ms: _Optional[int] = ..., live: _Optional[bool] = ...) -> None: ...

class InFlightTask(_message.Message):
    __slots__ = ("consumer", "entry_id", "request_id", "group_index", "task_id", "attempt", "deliveries", "idle_ms")
    CONSUMER_FIELD_NUMBER: _ClassVar[int]
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_INDEX_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    DELIVERIES_FIELD_NUMBER: _ClassVar[int]
    IDLE_MS_FIELD_NUMBER: _ClassVar[int]
    consumer: str
    entry_id: str
    request_id: str
    group_index: int
    task_id: str
    attempt: int
    deliveries: int
    idle_ms: int
    def __init__(self, consumer: _Optional[str] = ..., entry_id: _Optional[str] = ..., request_id: _Optional[str] = ..., group_index: _Optional[int] = ..., task_id: _Optional[str] = ..., attempt: _Optional[int] = ..., deliveries: _Optional[int] = ..., idle_ms: _Optional[int] = ...) -> None: ...

class StreamBacklog(_message.Message):
    __slots__ = ("stream", "group", "consumers", "pending", "lag", "reclaimed", "length")
    STREAM_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    CONSUMERS_FIELD_NUMBER: _ClassVar[int]
    PENDING_FIELD_NUMBER: _ClassVar[int]
    LAG_FIELD_NUMBER: _ClassVar[int]
    RECLAIMED_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    stream: str
    group: str
    consumers: int
    pending: int
    lag: int
    reclaimed: int
    length: int
    def __init__(self, stream: _Optional[str] = ..., group: _Optional[str] = ..., consumers: _Optional[int] = ..., pending: _Optional[int] = ..., lag: _Optional[int] = ..., reclaimed: _Optional[int] = ..., length: _Optional[int] = ...) -> None: ...

class DeadLetter(_message.Message):
    __slots__ = ("entry_id", "request_id", "group_index", "task_id", "consumer", "deliveries", "error", "dead_lettered_at", "fields")
    class FieldsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_INDEX_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_FIELD_NUMBER: _ClassVar[int]
    DELIVERIES_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    DEAD_LETTERED_AT_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    entry_id: str
    request_id: str
    group_index: int
    task_id: str
    consumer: str
    deliveries: int
    error: str
    dead_lettered_at: str
    fields: _containers.ScalarMap[str, str]
    def __init__(self, entry_id: _Optional[str] = ..., request_id: _Optional[str] = ..., group_index: _Optional[int] = ..., task_id: _Optional[str] = ..., consumer: _Optional[str] = ..., deliveries: _Optional[int] = ..., error: _Optional[str] = ..., dead_lettered_at: _Optional[str] = ..., fields: _Optional[_Mapping[str, str]] = ...) -> None: ...

class GetWorkersResponse(_message.Message):
    __slots__ = ("consumers", "in_flight", "streams", "dead_letters", "dead_letters_total")
    CONSUMERS_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    STREAMS_FIELD_NUMBER: _ClassVar[int]
    DEAD_LETTERS_FIELD_NUMBER: _ClassVar[int]
    DEAD_LETTERS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    consumers: _containers.RepeatedCompositeFieldContainer[WorkerConsumer]
    in_flight: _containers.RepeatedCompositeFieldContainer[InFlightTask]
    streams: _containers.RepeatedCompositeFieldContainer[StreamBacklog]
    dead_letters: _containers.RepeatedCompositeFieldContainer[DeadLetter]
    dead_letters_total: int
    def __init__(self, consumers: _Optional[_Iterable[_Union[WorkerConsumer, _Mapping]]] = ..., in_flight: _Optional[_Iterable[_Union[InFlightTask, _Mapping]]] = ..., streams: _Optional[_Iterable[_Union[StreamBacklog, _Mapping]]] = ..., dead_letters: _Optional[_Iterable[_Union[DeadLetter, _Mapping]]] = ..., dead_letters_total: _Optional[int] = ...) -> None: ...
