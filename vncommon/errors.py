"""One error tree for the mesh: each error carries a stable reason word and a gRPC code.

Servicers raise these; `vncommon.grpcutil` turns them into `google.rpc.Status` with an `ErrorInfo`
detail, and clients turn a status back into the same class with `vncommon.rpcerrors.decode`.
"""

from __future__ import annotations

from collections.abc import Mapping

import grpc


class VnError(Exception):
    """Root of every error the mesh reports to a caller."""

    reason = "INTERNAL"
    code = grpc.StatusCode.INTERNAL
    retryable = False

    def __init__(self, message: str, metadata: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.metadata: dict[str, str] = dict(metadata or {})


class InvalidArgument(VnError):
    """The request is not acceptable as sent (bad parameter, empty body, invalid VNML)."""

    reason = "INVALID_ARGUMENT"
    code = grpc.StatusCode.INVALID_ARGUMENT


class EmptyBody(InvalidArgument):
    """The request body is empty."""

    reason = "EMPTY_BODY"


class InvalidVnml(InvalidArgument):
    """Well-formed XML that is not a valid VNML request (no group, group without valuation, ...)."""

    reason = "INVALID_VNML"


class MalformedXml(InvalidArgument):
    """The body is not well-formed XML, or uses a forbidden construct such as a DOCTYPE."""

    reason = "MALFORMED_XML"

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(f"{message} (line {line}, column {column})", {"line": str(line), "column": str(column)})
        self.line = line
        self.column = column


class UnsupportedMediaType(InvalidArgument):
    """The declared content type is not application/xml or text/xml."""

    reason = "UNSUPPORTED_MEDIA_TYPE"


class Unauthenticated(VnError):
    """The call carries no accepted credential (bearer token, or a verified client certificate)."""

    reason = "UNAUTHENTICATED"
    code = grpc.StatusCode.UNAUTHENTICATED


class PayloadTooLarge(VnError):
    """The body is larger than PAYLOAD_MAX_BYTES."""

    reason = "PAYLOAD_TOO_LARGE"
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class IdempotencyKeyReused(VnError):
    """An idempotency key was sent again with a different body."""

    reason = "IDEMPOTENCY_KEY_REUSED"
    code = grpc.StatusCode.ALREADY_EXISTS


class RequestNotFound(VnError):
    """No request with this id is known."""

    reason = "REQUEST_NOT_FOUND"
    code = grpc.StatusCode.NOT_FOUND


class ResultNotReady(VnError):
    """The request is still running; its results do not exist yet."""

    reason = "RESULT_NOT_READY"
    code = grpc.StatusCode.FAILED_PRECONDITION
    retryable = True


class RequestFailed(VnError):
    """The request ended in failure; its detail is in metadata["detail"]."""

    reason = "REQUEST_FAILED"
    code = grpc.StatusCode.FAILED_PRECONDITION


class RequestCancelled(VnError):
    """The request was cancelled, by a caller or at its deadline; its detail is in metadata["detail"]."""

    reason = "REQUEST_CANCELLED"
    code = grpc.StatusCode.FAILED_PRECONDITION


class RequestFinished(VnError):
    """The request already succeeded or failed, so it cannot be cancelled; metadata["status"] says how."""

    reason = "REQUEST_FINISHED"
    code = grpc.StatusCode.FAILED_PRECONDITION


class RequestExpired(VnError):
    """The request's data was purged after REQUEST_TTL_SECONDS."""

    reason = "REQUEST_EXPIRED"
    code = grpc.StatusCode.NOT_FOUND


class Unavailable(VnError):
    """A dependency (Redis, another service) does not answer."""

    reason = "UNAVAILABLE"
    code = grpc.StatusCode.UNAVAILABLE
    retryable = True


class DeadlineExceeded(VnError):
    """The caller's deadline passed first."""

    reason = "DEADLINE_EXCEEDED"
    code = grpc.StatusCode.DEADLINE_EXCEEDED
    retryable = True


class TaskRetriesExhausted(VnError):
    """A task failed on its last allowed attempt, so its group and request failed."""

    reason = "TASK_RETRIES_EXHAUSTED"


class HydrationLimit(VnError):
    """Hydrating a request passed one of its budgets (time, memory, bytes, nodes, clones, depth); the limit
    is named in metadata["limit"]. Hostile or runaway input: never retried."""

    reason = "HYDRATION_LIMIT"
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class RunAttemptsExhausted(VnError):
    """A request's run was started VNVS_MAX_RUN_STARTS times without finishing a group (each run was lost
    to a crash, a kill or a stalled lease), so it is failed instead of resumed again."""

    reason = "RUN_ATTEMPTS_EXHAUSTED"


class OrchestratorBusy(VnError):
    """A vnvs instance already drives as many request bytes as VNVS_MAX_INFLIGHT_BYTES allows: the request
    waits (in the ingest stream) for it or another instance. Never a failure of the request."""

    reason = "ORCHESTRATOR_BUSY"
    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    retryable = True


class RequestOverBudget(VnError):
    """The request alone is larger than the orchestrator's whole VNVS_MAX_INFLIGHT_BYTES, so it could never
    be admitted: it fails at once, naming the setting, rather than waiting forever."""

    reason = "REQUEST_OVER_BUDGET"
    code = grpc.StatusCode.FAILED_PRECONDITION


class InvalidResult(VnError):
    """A task result is not a task document or a bare <valuation>."""

    reason = "INVALID_RESULT"
    code = grpc.StatusCode.FAILED_PRECONDITION


class ResponseTooLarge(VnError):
    """The assembled response would be larger than GetResults can return (PAYLOAD_MAX_BYTES)."""

    reason = "RESPONSE_TOO_LARGE"
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class BindError(Exception):
    """A service cannot listen on its address (in use, not assignable, no permission); EXIT_BIND."""


class ConfigError(Exception):
    """A configuration value is missing or invalid; the service stops with EXIT_CONFIG."""


ERRORS_BY_REASON: dict[str, type[VnError]] = {
    cls.reason: cls
    for cls in (
        VnError,
        InvalidArgument,
        EmptyBody,
        InvalidVnml,
        MalformedXml,
        UnsupportedMediaType,
        Unauthenticated,
        PayloadTooLarge,
        IdempotencyKeyReused,
        RequestNotFound,
        ResultNotReady,
        RequestFailed,
        RequestExpired,
        Unavailable,
        DeadlineExceeded,
        TaskRetriesExhausted,
        HydrationLimit,
        RunAttemptsExhausted,
        OrchestratorBusy,
        RequestOverBudget,
        InvalidResult,
        ResponseTooLarge,
    )
}

# Statuses that reach a client without an ErrorInfo (from the transport itself, not from a servicer).
ERRORS_BY_CODE: dict[grpc.StatusCode, type[VnError]] = {
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.RESOURCE_EXHAUSTED: PayloadTooLarge,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
}


def rebuild(reason: str, code: grpc.StatusCode, message: str, metadata: Mapping[str, str]) -> VnError:
    """The VnError a remote service raised, from its reason, code, message and metadata."""
    known = ERRORS_BY_REASON.get(reason)
    cls = known or ERRORS_BY_CODE.get(code, VnError)
    error = cls.__new__(cls)
    # Bypass subclass constructors: the message already holds what they would add to it.
    VnError.__init__(error, message, metadata)
    error.code = code
    error.reason = reason if known or cls is VnError else cls.reason
    if isinstance(error, MalformedXml):
        error.line = _int(metadata.get("line"))
        error.column = _int(metadata.get("column"))
    return error


def _int(raw: str | None) -> int:
    try:
        return int(raw or 0)
    except ValueError:
        return 0
