"""TaskService.ExecuteTask: one task run directly through the same executor and normalisation as a worker."""

from __future__ import annotations

import logging

import grpc

from vn.v1 import task_pb2, task_pb2_grpc
from vnas import metrics
from vnas.executors import Executor
from vnas.task import TaskContext
from vncommon import errortext
from vncommon.errors import InvalidArgument
from vncommon.grpcutil import unary_errors
from vncommon.logs import log_context
from vncommon.state import task_status, task_status_to_proto
from vncommon.xmlsafe import parse_xml

log = logging.getLogger(__name__)

SERVICE_NAME = task_pb2.DESCRIPTOR.services_by_name["TaskService"].full_name


class TaskServicer(task_pb2_grpc.TaskServiceServicer):
    """Runs the task in the RPC; a failed task is a FAILED response, not an RPC error."""

    def __init__(self, executor: Executor) -> None:
        self._executor = executor

    @unary_errors
    async def ExecuteTask(
        self, request: task_pb2.ExecuteTaskRequest, context: grpc.aio.ServicerContext
    ) -> task_pb2.ExecuteTaskResponse:
        if not request.task_xml.strip():
            raise InvalidArgument("task_xml is empty")
        parse_xml(request.task_xml, what="task XML")  # MALFORMED_XML with line and column
        ctx = TaskContext(
            request_id=request.request_id,
            group_index=request.group_index,
            task_id=request.task_id,
            attempt=request.attempt or 1,
            valuation_name=request.valuation_name,
        )
        with log_context(requestId=ctx.request_id or None, groupIndex=ctx.group_index, taskId=ctx.task_id or None):
            outcome = await self._executor.run(ctx, request.task_xml)
            metrics.observe_outcome(outcome.completed, outcome.duration_ms)
            log.info("ExecuteTask finished", extra={"fields": {
                "status": task_status(outcome.completed),
                "durationMs": outcome.duration_ms, "error": errortext.summary(outcome.error) or None}})
            log.debug("ExecuteTask finished", extra={"fields": {"error": outcome.error or None}})
        status = task_status_to_proto(task_status(outcome.completed))
        return task_pb2.ExecuteTaskResponse(status=status, result_xml=outcome.result_xml,
                                            duration_ms=outcome.duration_ms, error=outcome.error)


def add_task_service(server: grpc.aio.Server, executor: Executor) -> None:
    task_pb2_grpc.add_TaskServiceServicer_to_server(TaskServicer(executor), server)  # type: ignore[no-untyped-call]
