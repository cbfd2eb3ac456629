"""Small helpers the end-to-end tests share: gRPC stubs on a mesh, requests, scripts."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import grpc
from lxml import etree

from bench.requests import chained_request
from tests.e2e.conftest import EXAMPLES, Mesh
from vn.v1 import valuation_pb2, valuation_pb2_grpc

MAX_MESSAGE = 12 * 1024 * 1024
OPTIONS = [("grpc.max_send_message_length", MAX_MESSAGE), ("grpc.max_receive_message_length", MAX_MESSAGE)]
Status = valuation_pb2.RequestStatus


def example_request() -> bytes:
    return (EXAMPLES / "request.xml").read_bytes()


def stub(mesh: Mesh) -> tuple[grpc.aio.Channel, valuation_pb2_grpc.ValuationServiceStub]:
    channel = grpc.aio.insecure_channel(mesh.vnapi_address, options=OPTIONS)
    return channel, valuation_pb2_grpc.ValuationServiceStub(channel)


def simple_request(groups: int = 1, tasks: int = 2) -> bytes:
    """A request whose group 1 fans out over `tasks` instruments and group g reads group g-1's results."""
    return chained_request(groups, tasks)


def write_script(directory: Path, name: str, body: str) -> Path:
    path = directory / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def response_groups(xml: bytes) -> list[list[etree._Element]]:
    root = etree.fromstring(xml)
    return [group.findall("valuation") for group in root.findall("project/group")]


def amounts(xml: bytes, group: int) -> list[str]:
    return [v.findtext("analytics/price/amount") or "" for v in response_groups(xml)[group]]


def detail(text: str) -> dict[str, object]:
    value = json.loads(text)
    assert isinstance(value, dict)
    return value
