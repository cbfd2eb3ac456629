"""VNVS_ADDRESS / VNAPI_ADDRESS: one address, a list, or a resolver target; lists and resolver targets get
round-robin over healthy instances."""

from __future__ import annotations

import json

import pytest

from gateway.settings import GatewaySettings
from vnapi.settings import VnapiSettings
from vncommon.balancing import balancing_options, env_target
from vncommon.errors import ConfigError


@pytest.mark.parametrize(("raw", "target"), [
    ("vnvs:50052", "vnvs:50052"),
    ("127.0.0.1:1, 127.0.0.1:2", "ipv4:127.0.0.1:1,127.0.0.1:2"),
    ("localhost:1,localhost:2", "ipv4:127.0.0.1:1,127.0.0.1:2"),
    ("[::1]:5,[::1]:6", "ipv6:[::1]:5,[::1]:6"),
    ("dns:///vnvs-headless.vnml.svc:50052", "dns:///vnvs-headless.vnml.svc:50052"),
])
def test_targets(raw: str, target: str) -> None:
    assert env_target({"VNVS_ADDRESS": raw}, "VNVS_ADDRESS", "x:1") == target


@pytest.mark.parametrize("raw", ["vnvs-a:1,vnvs-b:2", "dns:///vnvs", "127.0.0.1:1,[::1]:2", "nohost",
                                 "1.2.3.4:x,1.2.3.4:2"])
def test_a_bad_target_names_the_setting(raw: str) -> None:
    with pytest.raises(ConfigError, match="VNAPI_ADDRESS"):
        env_target({"VNAPI_ADDRESS": raw}, "VNAPI_ADDRESS", "x:1")


def test_one_address_keeps_the_default_policy_and_many_get_round_robin_with_health_checks() -> None:
    assert balancing_options("vnvs:50052") == []
    options = dict(balancing_options("ipv4:127.0.0.1:1,127.0.0.1:2"))
    config = json.loads(options["grpc.service_config"])
    assert config["loadBalancingConfig"] == [{"round_robin": {}}]
    assert config["healthCheckConfig"] == {"serviceName": ""}


def test_the_services_read_their_targets_through_it() -> None:
    vnapi = VnapiSettings.from_env({"VNVS_ADDRESS": "127.0.0.1:1,127.0.0.1:2"})
    assert vnapi.vnvs_address == "ipv4:127.0.0.1:1,127.0.0.1:2"
    gateway = GatewaySettings.from_env({"VNAPI_ADDRESS": "dns:///vnapi:50051"})
    assert gateway.vnapi_address == "dns:///vnapi:50051"
    with pytest.raises(ConfigError, match="VNVS_ADDRESS"):
        VnapiSettings.from_env({"VNVS_ADDRESS": "a:1,b:2"})
