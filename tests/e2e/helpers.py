"""Small helpers the end-to-end tests share: gRPC stubs on a mesh, requests, scripts."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import grpc
from lxml import etree

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


def simple_request(groups: int = 1, tasks: int = 2, extra: str = "") -> bytes:
    """A request whose group 1 fans out over `tasks` instruments and later groups read earlier results."""
    instruments = "".join(
        f'<instrument name="B{i}"><coupon>0.0{(i % 5) + 2}</coupon><maturityYears>{i % 9 + 1}</maturityYears>'
        f"<notional>1000</notional></instrument>" for i in range(1, tasks + 1))
    body = ['<group name="g1"><valuation name="bond" use="vn:link(/vnml/project/portfolio, instrument)">'
            '<instrument select="."/><market select="/vnml/project/market"/>'
            '<analytics><price><amount/></price></analytics></valuation></group>']
    for g in range(2, groups + 1):
        body.append(f'<group name="g{g}"><valuation name="step{g}" use="vn:link(/vnml/project/group[{g - 1}], '
                    f'valuation)"><instrument select="./instrument"/><market select="/vnml/project/market"/>'
                    f'<basePrice><amount select="./analytics/price/amount"/></basePrice>'
                    f'<analytics><price><amount/></price></analytics></valuation></group>')
    return (f'<?xml version="1.0"?><vnml><project name="p">{extra}<market name="M"><yield>0.04</yield></market>'
            f'<portfolio>{instruments}</portfolio>{"".join(body)}</project></vnml>').encode()


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
