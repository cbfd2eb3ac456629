from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class OrchestrateOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ORCHESTRATE_OUTCOME_UNSPECIFIED: _ClassVar[OrchestrateOutcome]
    ORCHESTRATE_OUTCOME_ACCEPTED: _ClassVar[OrchestrateOutcome]
    ORCHESTRATE_OUTCOME_ALREADY_RUNNING: _ClassVar[OrchestrateOutcome]
    ORCHESTRATE_OUTCOME_ALREADY_FINISHED: _ClassVar[OrchestrateOutcome]
ORCHESTRATE_OUTCOME_UNSPECIFIED: OrchestrateOutcome
ORCHESTRATE_OUTCOME_ACCEPTED: OrchestrateOutcome
ORCHESTRATE_OUTCOME_ALREADY_RUNNING: OrchestrateOutcome
ORCHESTRATE_OUTCOME_ALREADY_FINISHED: OrchestrateOutcome

class OrchestrateRequest(_message.Message):
    __slots__ = ("request_id", "trace_id")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TRACE_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    trace_id: str
    def __init__(self, request_id: _Optional[str] = ..., trace_id: _Optional[str] = ...) -> None: ...

class OrchestrateResponse(_message.Message):
    __slots__ = ("request_id", "outcome")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    outcome: OrchestrateOutcome
    def __init__(self, request_id: _Optional[str] = ..., outcome: _Optional[_Union[OrchestrateOutcome, str]] = ...) -> None: ...
