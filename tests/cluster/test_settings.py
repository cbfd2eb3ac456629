"""REDIS_MODE and STREAM_SHARDS are validated at start: a bad value names the setting, the process exits 78."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT, RedisServer
from vncommon.config import CommonSettings
from vncommon.errors import ConfigError
from vncommon.service import EXIT_CONFIG


def test_the_defaults_are_one_redis_and_one_shard() -> None:
    settings = CommonSettings.from_env({})
    assert (settings.redis_mode, settings.stream_shards, settings.stream_layouts) == ("single", 1, (1,))


@pytest.mark.parametrize(("env", "named"), [
    ({"REDIS_MODE": "sentinel"}, "REDIS_MODE"),
    ({"REDIS_MODE": "cluster", "REDIS_URL": "unix:///tmp/redis.sock"}, "REDIS_MODE"),
    ({"REDIS_MODE": "cluster", "REDIS_URL": "redis://127.0.0.1:7000/3"}, "REDIS_MODE"),
    ({"STREAM_SHARDS": "0"}, "STREAM_SHARDS"),
    ({"STREAM_SHARDS": "many"}, "STREAM_SHARDS"),
    ({"STREAM_SHARDS_DRAIN": "1,x"}, "STREAM_SHARDS_DRAIN"),
])
def test_a_bad_setting_is_a_config_error_naming_it(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        CommonSettings.from_env(env)


def test_draining_layouts_follow_the_current_one_without_repeating_it() -> None:
    settings = CommonSettings.from_env({"STREAM_SHARDS": "6", "STREAM_SHARDS_DRAIN": "1,6,3"})
    assert settings.stream_layouts == (6, 1, 3)


def _run(service: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", service], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=60, check=False)


@pytest.mark.parametrize("service", ["vnapi", "vnvs", "vnas"])
def test_a_service_with_a_bad_redis_mode_exits_78_naming_it(base_env: dict[str, str], service: str) -> None:
    done = _run(service, {**base_env, "REDIS_MODE": "clustered", "VNAS_SCRIPT": str(ROOT / "examples" / "price.py")})
    assert done.returncode == EXIT_CONFIG, done.stderr
    assert "REDIS_MODE" in done.stderr


def test_the_wrong_redis_mode_for_the_server_stops_the_service_at_start(
        redis_server: RedisServer, base_env: dict[str, str]) -> None:
    """cluster against a plain Redis, or single against a cluster node: exit 78 with a message naming it."""
    other = "single" if redis_server.mode == "cluster" else "cluster"
    done = _run("vnvs", {**base_env, "REDIS_MODE": other, "GRPC_PORT": "0"})
    assert done.returncode == EXIT_CONFIG, done.stderr
    assert "REDIS_MODE" in done.stderr and "configuration error" in done.stderr
