"""Calling one of many instances: gRPC targets with client-side round-robin and health checking.

VNVS_ADDRESS (vnapi -> vnvs) and VNAPI_ADDRESS (gateway -> vnapi) take one `host:port` (unchanged: one
instance, gRPC's default pick-first), a comma list of `ip:port` (turned into gRPC's `ipv4:` / `ipv6:`
multi-address target), or any gRPC name-resolver target such as `dns:///vnvs-headless:50052` (a
Kubernetes headless Service resolves to every ready pod; gRPC re-resolves when a connection drops).

For a list or a resolver target the channel balances calls round-robin over every address, and only
over those whose gRPC health service answers SERVING: an instance that is down, starting, draining or
unable to reach Redis (NOT_SERVING) gets no calls until it is healthy again.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from typing import Any

from vncommon.config import env_str
from vncommon.errors import ConfigError

RESOLVER_SCHEMES = ("dns:", "ipv4:", "ipv6:", "unix:", "unix-abstract:")
# The whole server's health (the empty service name), which every vnml server sets.
SERVICE_CONFIG = json.dumps({
    "loadBalancingConfig": [{"round_robin": {}}],
    "healthCheckConfig": {"serviceName": ""},
})


def is_balanced(target: str) -> bool:
    """A target that may stand for several instances (a list or a resolver target)."""
    return target.startswith(RESOLVER_SCHEMES)


def balancing_options(target: str) -> list[tuple[str, Any]]:
    """Channel options for `target`: round-robin over healthy addresses when it may hold several."""
    if not is_balanced(target):
        return []
    # A DNS TXT record must not replace this service config.
    return [("grpc.service_config", SERVICE_CONFIG), ("grpc.service_config_disable_resolution", 1)]


def _ip_port(name: str, item: str) -> tuple[int, str]:
    host, sep, port = item.rpartition(":")
    host = host.strip("[]")
    if host == "localhost":
        host = "127.0.0.1"
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{name}: {item!r} in the list must be ip:port")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ConfigError(f"{name}: {item!r} in the list is not an IP address; for a name use "
                          f"dns:///{item} (it may resolve to many instances)") from None
    return address.version, f"[{host}]:{port}" if address.version == 6 else f"{host}:{port}"


def env_target(env: Mapping[str, str], name: str, default: str) -> str:
    """A gRPC target from `name`: host:port, a comma list of ip:port, or a resolver target (dns:///...)."""
    value = env_str(env, name, default)
    if value.startswith(RESOLVER_SCHEMES):
        if value.startswith("dns:") and not value.rpartition(":")[2].isdigit():
            raise ConfigError(f"{name}={value!r} must name a port (dns:///host:port)")
        return value
    items = [item.strip() for item in value.split(",") if item.strip()]
    if len(items) == 1:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ConfigError(f"{name}={value!r} must be host:port, a list of ip:port, or dns:///host:port")
        return value
    parsed = [_ip_port(name, item) for item in items]
    versions = {version for version, _ in parsed}
    if len(versions) > 1:
        raise ConfigError(f"{name}={value!r} mixes IPv4 and IPv6 addresses; list one family")
    scheme = "ipv6" if versions == {6} else "ipv4"
    return f"{scheme}:{','.join(address for _, address in parsed)}"
