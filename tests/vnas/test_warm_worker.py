"""Warm executors under the real worker loop (Redis, dispatch entries, settle) and their settings."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis.asyncio as redis

from tests.vnas.conftest import (
    WorkerFactory,
    dispatch,
    pending_count,
    price_of,
    process_alive,
    read_updates,
    write_script,
)
from tests.vnas.warmtasks import POOL_TARGET, ctx, persistent, pid_of, pool, python_script, task
from vnas.executors import WarmExecutor
from vnas.server import VnasService
from vnas.settings import VnasSettings
from vncommon import keys
from vncommon.config import CommonSettings
from vncommon.errors import ConfigError

BEHAVIOURS = {"1": "price", "2": "raise", "3": "sigkill", "4": "nan", "5": "stdout", "6": "price"}


@pytest.mark.parametrize("kind", ["persistent", "pool"])
async def test_a_worker_settles_every_task_and_bad_ones_fail_alone(
    redis_client: redis.Redis, make_worker: WorkerFactory, tmp_path: Path, kind: str
) -> None:
    for task_id, behaviour in BEHAVIOURS.items():
        await dispatch(redis_client, task_id=task_id, xml=task(behaviour))
    executor: WarmExecutor = persistent(python_script(tmp_path)) if kind == "persistent" else pool()
    worker = make_worker(executor=executor, concurrency=2)
    try:
        await worker.consumer.run(drain=True)
    finally:
        await executor.aclose()
    updates = {update.task_id: update for update in await read_updates(redis_client)}
    assert {task_id: updates[task_id].status for task_id in BEHAVIOURS} == {
        "1": "completed", "2": "failed", "3": "failed", "4": "failed", "5": "completed", "6": "completed"}
    assert "raised ValueError" in updates["2"].error
    assert "killed by SIGKILL" in updates["3"].error
    assert "returned nan" in updates["4"].error
    for task_id in ("2", "3", "4"):  # nothing half written
        assert await redis_client.exists(keys.task_result_key("req-1", 0, task_id)) == 0
    assert price_of(await redis_client.get(keys.task_result_key("req-1", 0, "5"))) == "99.50"
    assert await pending_count(redis_client) == 0
    assert worker.consumer.outcomes["completed"] == 3


def test_persistent_mode_is_read_and_checked(tmp_path: Path) -> None:
    script = write_script(tmp_path, "echo 1")
    settings = VnasSettings.from_env({"VNAS_SCRIPT": script, "VNAS_SCRIPT_MODE": "persistent",
                                      "VNAS_WARM_MAX_TASKS": "50", "VNAS_WARM_MAX_RSS_MB": "512"})
    assert (settings.script_mode, settings.warm_max_tasks, settings.warm_max_rss_mb) == ("persistent", 50, 512)
    assert settings.warm
    default = VnasSettings.from_env({"VNAS_SCRIPT": script})
    assert (default.script_mode, default.executor_processes, default.warm) == ("oneshot", 0, False)
    with pytest.raises(ConfigError, match="VNAS_SCRIPT_MODE='warm' must be one of oneshot, persistent"):
        VnasSettings.from_env({"VNAS_SCRIPT": script, "VNAS_SCRIPT_MODE": "warm"})


def test_the_process_pool_is_read_and_checked() -> None:
    settings = VnasSettings.from_env({"VNAS_EXECUTOR": f"python:{POOL_TARGET}", "VNAS_EXECUTOR_PROCESSES": "3"})
    assert (settings.executor_processes, settings.warm) == (3, True)
    bad = (("-1", "must be at least 0"), ("x", "is not an integer"), ("257", "must be at least 0 and at most 256"))
    for value, words in bad:
        with pytest.raises(ConfigError, match=f"VNAS_EXECUTOR_PROCESSES={value!r} {words}"):
            VnasSettings.from_env({"VNAS_EXECUTOR": f"python:{POOL_TARGET}", "VNAS_EXECUTOR_PROCESSES": value})


def test_a_warm_setting_of_the_other_executor_is_a_config_error_naming_both(tmp_path: Path) -> None:
    script = write_script(tmp_path, "echo 1")
    with pytest.raises(ConfigError, match="VNAS_SCRIPT_MODE=persistent applies to VNAS_SCRIPT, but VNAS_EXECUTOR"):
        VnasSettings.from_env({"VNAS_EXECUTOR": f"python:{POOL_TARGET}", "VNAS_SCRIPT_MODE": "persistent"})
    with pytest.raises(ConfigError, match="VNAS_EXECUTOR_PROCESSES=2 applies to VNAS_EXECUTOR, but VNAS_SCRIPT"):
        VnasSettings.from_env({"VNAS_SCRIPT": script, "VNAS_EXECUTOR_PROCESSES": "2"})
    for name in ("VNAS_WARM_MAX_TASKS", "VNAS_WARM_MAX_RSS_MB"):
        with pytest.raises(ConfigError, match=f"{name} applies only to warm processes"):
            VnasSettings.from_env({"VNAS_SCRIPT": script, name: "10"})
    with pytest.raises(ConfigError, match="VNAS_WARM_MAX_TASKS='0' must be at least 1"):
        VnasSettings.from_env({"VNAS_SCRIPT": script, "VNAS_SCRIPT_MODE": "persistent", "VNAS_WARM_MAX_TASKS": "0"})


async def test_the_service_stops_its_warm_processes_when_it_closes(tmp_path: Path) -> None:
    settings = VnasSettings(script=python_script(tmp_path), script_mode="persistent",
                            common=CommonSettings(redis_url="redis://127.0.0.1:1/0"))
    service = VnasService(settings, {})
    # The service's own executor adopts orphans as the worker does (its sweeps would kill this test runner's
    # redis-server): the one closed here is the same kind without adopting.
    service.executor = persistent(python_script(tmp_path, name="closed.sh"))
    pid = pid_of(await service.executor.run(ctx(), task("whoami")))
    await service.close()
    assert not process_alive(pid)
