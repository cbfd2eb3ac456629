"""VnasSettings.from_env: defaults, and a ConfigError naming the variable for every bad value."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.vnas.conftest import write_script
from vnas.settings import VnasSettings
from vncommon.errors import ConfigError


@pytest.fixture
def script(tmp_path: Path) -> str:
    return write_script(tmp_path, "echo 1")


def test_defaults_apply_when_only_the_script_is_set(script: str) -> None:
    settings = VnasSettings.from_env({"VNAS_SCRIPT": script})
    assert settings.grpc_port == 50053
    assert settings.grpc_host == "127.0.0.1"
    assert settings.task_timeout_ms == 300_000
    assert settings.claim_idle_ms == 30_000
    assert settings.concurrency == 4
    assert settings.shutdown_grace_ms == 10_000
    assert settings.consumer_name.endswith(f"-{os.getpid()}")
    assert settings.metrics_port is None
    assert settings.script == script
    assert settings.executor is None
    assert settings.result_limit == 10 * 1024 * 1024  # PAYLOAD_MAX_BYTES
    assert settings.script_env == ()


def test_every_value_is_read_from_the_environment(script: str) -> None:
    settings = VnasSettings.from_env({
        "VNAS_SCRIPT": script, "GRPC_PORT": "0", "GRPC_HOST": "0.0.0.0", "VNAS_TASK_TIMEOUT_MS": "1500",
        "VNAS_CLAIM_IDLE_MS": "2000", "VNAS_CONCURRENCY": "16", "VNAS_CONSUMER_NAME": "pod-7",
        "VNAS_SHUTDOWN_GRACE_MS": "0", "VNAS_METRICS_PORT": "9109", "REDIS_URL": "redis://example:6380/1",
        "VNAS_PREFETCH": "0",
    })
    assert settings.prefetch == 0
    assert (settings.grpc_port, settings.grpc_address) == (0, "0.0.0.0:0")
    assert (settings.task_timeout_s, settings.claim_idle_ms, settings.concurrency) == (1.5, 2000, 16)
    assert (settings.consumer_name, settings.shutdown_grace_ms, settings.metrics_port) == ("pod-7", 0, 9109)
    assert settings.redis_url == "redis://example:6380/1"


def test_the_python_executor_is_accepted_without_its_prefix() -> None:
    settings = VnasSettings.from_env({"VNAS_EXECUTOR": "python:examples.pricers:price"})
    assert settings.executor == "examples.pricers:price"
    assert settings.script is None


def test_a_script_given_by_name_is_found_on_path() -> None:
    assert VnasSettings.from_env({"VNAS_SCRIPT": "true"}).script == os.path.realpath(
        VnasSettings.from_env({"VNAS_SCRIPT": "true"}).script or "")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("GRPC_PORT", "http"),
        ("GRPC_PORT", "70000"),
        ("VNAS_TASK_TIMEOUT_MS", "0"),
        ("VNAS_TASK_TIMEOUT_MS", "5s"),
        ("VNAS_CLAIM_IDLE_MS", "-1"),
        ("VNAS_CONCURRENCY", "0"),
        ("VNAS_CONCURRENCY", "four"),
        ("VNAS_PREFETCH", "-1"),
        ("VNAS_PREFETCH", "many"),
        ("VNAS_SHUTDOWN_GRACE_MS", "-5"),
        ("VNAS_METRICS_PORT", "x"),
        ("VNAS_CONSUMER_NAME", "has space"),
        ("VNAS_MAX_RESULT_BYTES", "0"),
        ("VNAS_MAX_RESULT_BYTES", "ten"),
        ("VNAS_MAX_RESULT_BYTES", str(10 * 1024 * 1024 + 1)),
        ("VNAS_SCRIPT_ENV", "HOME,not-a-name"),
        ("VNAS_SCRIPT_ENV", "VN_TASK_ID"),
        ("REDIS_URL", "http://localhost"),
        ("LOG_LEVEL", "LOUD"),
    ],
)
def test_a_bad_value_is_a_config_error_naming_the_variable(script: str, name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        VnasSettings.from_env({"VNAS_SCRIPT": script, name: value})


def test_a_missing_script_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="VNAS_SCRIPT"):
        VnasSettings.from_env({"VNAS_SCRIPT": str(tmp_path / "nope.sh")})


def test_a_script_that_is_not_executable_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "plain.sh"
    path.write_text("echo 1\n")
    with pytest.raises(ConfigError, match=r"VNAS_SCRIPT.*not executable"):
        VnasSettings.from_env({"VNAS_SCRIPT": str(path)})


def test_a_directory_is_not_a_script(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="VNAS_SCRIPT"):
        VnasSettings.from_env({"VNAS_SCRIPT": str(tmp_path)})


@pytest.mark.parametrize("value", ["examples.pricers:price", "python:", "python:module", "python:a b:c",
                                   "python:pkg.mod:fn:extra"])
def test_a_malformed_executor_is_a_config_error(value: str) -> None:
    with pytest.raises(ConfigError, match="VNAS_EXECUTOR"):
        VnasSettings.from_env({"VNAS_EXECUTOR": value})


def test_neither_script_nor_executor_is_a_config_error_naming_both() -> None:
    with pytest.raises(ConfigError, match=r"VNAS_SCRIPT.*VNAS_EXECUTOR.*neither"):
        VnasSettings.from_env({})


def test_both_script_and_executor_is_a_config_error(script: str) -> None:
    with pytest.raises(ConfigError, match="both"):
        VnasSettings.from_env({"VNAS_SCRIPT": script, "VNAS_EXECUTOR": "python:a.b:c"})


def test_the_result_limit_follows_payload_max_bytes_and_may_be_lower(script: str) -> None:
    assert VnasSettings.from_env({"VNAS_SCRIPT": script, "PAYLOAD_MAX_BYTES": "65536"}).result_limit == 65536
    lower = VnasSettings.from_env({"VNAS_SCRIPT": script, "VNAS_MAX_RESULT_BYTES": "4096"})
    assert lower.result_limit == 4096


def test_a_result_limit_above_payload_max_bytes_is_refused_naming_both(script: str) -> None:
    with pytest.raises(ConfigError, match=r"VNAS_MAX_RESULT_BYTES=70000 is more than PAYLOAD_MAX_BYTES=65536"):
        VnasSettings.from_env({"VNAS_SCRIPT": script, "PAYLOAD_MAX_BYTES": "65536", "VNAS_MAX_RESULT_BYTES": "70000"})


def test_vnas_script_env_is_a_checked_comma_separated_list(script: str) -> None:
    settings = VnasSettings.from_env({"VNAS_SCRIPT": script, "VNAS_SCRIPT_ENV": " MARKET_DATA_URL, PATH,,PATH "})
    assert settings.script_env == ("MARKET_DATA_URL", "PATH")


@pytest.mark.parametrize("secret", ["REDIS_URL", "GRPC_API_TOKENS", "GATEWAY_API_TOKENS", "GRPC_TLS_CERT_FILE",
                                    "GRPC_TLS_KEY_FILE", "GRPC_TLS_CA_FILE", "AWS_ACCESS_KEY_ID",
                                    "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "redis_url"])
def test_a_secret_in_vnas_script_env_is_refused_by_name(script: str, secret: str) -> None:
    with pytest.raises(ConfigError, match=f"VNAS_SCRIPT_ENV lists {secret}, a secret of the mesh"):
        VnasSettings.from_env({"VNAS_SCRIPT": script, "VNAS_SCRIPT_ENV": f"HOME,{secret}"})
