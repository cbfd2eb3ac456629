from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TaskOutcomeStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TASK_OUTCOME_STATUS_UNSPECIFIED: _ClassVar[TaskOutcomeStatus]
    TASK_OUTCOME_STATUS_COMPLETED: _ClassVar[TaskOutcomeStatus]
    TASK_OUTCOME_STATUS_FAILED: _ClassVar[TaskOutcomeStatus]
TASK_OUTCOME_STATUS_UNSPECIFIED: TaskOutcomeStatus
TASK_OUTCOME_STATUS_COMPLETED: TaskOutcomeStatus
TASK_OUTCOME_STATUS_FAILED: TaskOutcomeStatus

class ExecuteTaskRequest(_message.Message):
    __slots__ = ("request_id", "group_index", "task_id", "valuation_name", "attempt", "task_xml")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    GROUP_INDEX_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    VALUATION_NAME_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    TASK_XML_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    group_index: int
    task_id: str
    valuation_name: str
    attempt: int
    task_xml: bytes
    def __init__(self, request_id: _Optional[str] = ..., group_index: _Optional[int] = ..., task_id: _Optional[str] = ..., valuation_name: _Optional[str] = ..., attempt: _Optional[int] = ..., task_xml: _Optional[bytes] = ...) -> None: ...

class ExecuteTaskResponse(_message.Message):
    __slots__ = ("status", "result_xml", "duration_ms", "error")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    RESULT_XML_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    status: TaskOutcomeStatus
    result_xml: bytes
    duration_ms: int
    error: str
    def __init__(self, status: _Optional[_Union[TaskOutcomeStatus, str]] = ..., result_xml: _Optional[bytes] = ..., duration_ms: _Optional[int] = ..., error: _Optional[str] = ...) -> None: ...
