"""vn.v1.ConsoleService: the read-only views behind the gateway's web console."""

from __future__ import annotations

from collections.abc import Sequence

import grpc
import redis.asyncio as redis

from vn.v1 import console_pb2, console_pb2_grpc
from vnapi.console_queries import ConsoleQueries
from vnapi.workers_view import WorkersView
from vncommon.grpcutil import unary_errors


class ConsoleService(console_pb2_grpc.ConsoleServiceServicer):
    def __init__(self, client: redis.Redis, block_ms: int, layouts: Sequence[int] = (1,)) -> None:
        self._queries = ConsoleQueries(client)
        self._workers = WorkersView(client, block_ms, layouts)

    @unary_errors
    async def ListRequests(
        self, request: console_pb2.ListRequestsRequest, context: grpc.aio.ServicerContext
    ) -> console_pb2.ListRequestsResponse:
        return await self._queries.list_requests(request)

    @unary_errors
    async def GetRequestDetail(
        self, request: console_pb2.GetRequestDetailRequest, context: grpc.aio.ServicerContext
    ) -> console_pb2.GetRequestDetailResponse:
        return await self._queries.request_detail(request)

    @unary_errors
    async def GetWorkers(
        self, request: console_pb2.GetWorkersRequest, context: grpc.aio.ServicerContext
    ) -> console_pb2.GetWorkersResponse:
        return await self._workers.workers(request)
