"""`vn-health`: ask one service whether it is serving, for container HEALTHCHECKs and exec probes.

A gRPC target (`host:port`) is asked over the standard health protocol (`grpc.health.v1.Health/Check`,
over TLS when GRPC_TLS_* is set, as every client of the mesh does); an HTTP target (`http://...`, the
gateway's `/healthz`) must answer 200. Without a target it asks the gRPC service of this container:
127.0.0.1 on GRPC_PORT. Exit 0 when serving, 1 when not (or unreachable), 78 on a bad setting, and one
line on stderr saying why, so `docker inspect` shows something a person can act on.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from vncommon.config import MESSAGE_HEADROOM_BYTES, TlsSettings, env_int
from vncommon.errors import ConfigError
from vncommon.grpcutil import create_channel

EXIT_SERVING = 0
EXIT_NOT_SERVING = 1
EXIT_CONFIG = 78
DEFAULT_GRPC_PORT = 50051
DEFAULT_TIMEOUT_S = 3.0


class NotServing(Exception):
    """The target answered that it is not serving, or did not answer in time."""


async def check_grpc(address: str, service: str, timeout_s: float, tls: TlsSettings) -> None:
    """Return when `address` reports SERVING for `service` ("" is the whole server); else NotServing."""
    async with create_channel(address, MESSAGE_HEADROOM_BYTES, tls) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout_s)
        except grpc.aio.AioRpcError as exc:
            raise NotServing(f"{address}: {exc.code().name}: {exc.details()}") from None
    if reply.status != health_pb2.HealthCheckResponse.SERVING:
        status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        raise NotServing(f"{address} reports {status}")


def check_http(url: str, timeout_s: float) -> None:
    """Return when GET `url` answers 200; else NotServing with the status or the connection error."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        raise NotServing(f"{url} answered {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise NotServing(f"{url}: {getattr(exc, 'reason', exc)}") from None
    if status != 200:
        raise NotServing(f"{url} answered {status}")


def default_target() -> str:
    """This container's gRPC service: loopback on GRPC_PORT (the services listen on every interface)."""
    return f"127.0.0.1:{env_int(os.environ, 'GRPC_PORT', DEFAULT_GRPC_PORT, minimum=1, maximum=65_535)}"


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="vn-health", description="Exit 0 when a vnml service is serving.")
    parser.add_argument("target", nargs="?", default=None,
                        help="host:port (gRPC health) or an http(s):// URL; default 127.0.0.1:$GRPC_PORT")
    parser.add_argument("--service", default="", help="gRPC service name to ask about (default: the server)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds to wait for an answer")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    try:
        target = args.target or default_target()
        if target.startswith(("http://", "https://")):
            check_http(target, args.timeout)
        else:
            asyncio.run(check_grpc(target, args.service, args.timeout, TlsSettings.from_env(os.environ)))
    except ConfigError as exc:
        print(f"vn-health: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except NotServing as exc:
        print(f"vn-health: not serving: {exc}", file=sys.stderr)
        return EXIT_NOT_SERVING
    return EXIT_SERVING


if __name__ == "__main__":
    sys.exit(main())
