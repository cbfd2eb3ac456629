"""Executors: what runs one task XML to an outcome under the task timeout.

`script` starts VNAS_SCRIPT once per task; `python` calls a function in-process (in threads); `warm`
keeps long-lived framed-v1 processes, either VNAS_SCRIPT itself (VNAS_SCRIPT_MODE=persistent) or a pool
running the VNAS_EXECUTOR function (VNAS_EXECUTOR_PROCESSES). Everyone else imports from this package.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Protocol

from vnas import scriptenv
from vnas.executors.python import PythonExecutor, load_function
from vnas.executors.result import normalise_result
from vnas.executors.script import ScriptExecutor
from vnas.executors.warm import WarmExecutor, WarmOptions
from vnas.reaper import Reaper
from vnas.settings import VnasSettings
from vnas.task import TaskContext, TaskOutcome
from vncommon.errors import ConfigError

__all__ = ["Executor", "PythonExecutor", "ScriptExecutor", "WarmExecutor", "build_executor", "normalise_result",
           "persistent_script", "process_pool"]


class Executor(Protocol):
    """Runs one task XML to an outcome under the task timeout; a failed task is an outcome."""

    async def run(self, ctx: TaskContext, task_xml: bytes) -> TaskOutcome: ...

    async def aclose(self) -> None:
        """Stop what the executor keeps between tasks (warm processes); the worker calls it last."""


def build_executor(settings: VnasSettings, base_env: Mapping[str, str] | None = None) -> Executor:
    """The executor the settings name: a script (VNAS_SCRIPT) or a Python function (VNAS_EXECUTOR),
    one-shot or warm."""
    worker_env = os.environ if base_env is None else base_env
    # The worker's own executor adopts what scripts leave behind (vnas.reaper).
    if settings.script and settings.script_mode == "persistent":
        return persistent_script(settings, worker_env, Reaper(adopt_orphans=True))
    if settings.script:
        return ScriptExecutor(settings.script, settings.task_timeout_s, worker_env, allow_env=settings.script_env,
                              max_result_bytes=settings.result_limit, adopt_orphans=True)
    if settings.executor and settings.executor_processes:
        load_function(settings.executor)  # an import error stops the worker at start, as with threads
        return process_pool(settings, worker_env, Reaper(adopt_orphans=True))
    if settings.executor:
        return PythonExecutor(settings.executor, settings.task_timeout_s, settings.result_limit)
    raise ConfigError("set exactly one of VNAS_SCRIPT or VNAS_EXECUTOR")


def _warm_options(settings: VnasSettings, slots: int, stderr_with_exceptions: bool) -> WarmOptions:
    return WarmOptions(slots=slots, timeout_s=settings.task_timeout_s, max_result_bytes=settings.result_limit,
                       max_tasks=settings.warm_max_tasks, max_rss_mb=settings.warm_max_rss_mb,
                       stderr_with_exceptions=stderr_with_exceptions)


def persistent_script(settings: VnasSettings, worker_env: Mapping[str, str], reaper: Reaper | None = None
                      ) -> WarmExecutor:
    """VNAS_SCRIPT kept running, one process per task slot, with the one-shot script's minimal environment."""
    assert settings.script is not None
    env = scriptenv.base_env(worker_env, settings.script_env)
    return WarmExecutor([settings.script], env, "script", _warm_options(settings, settings.concurrency, True),
                        reaper)


def process_pool(settings: VnasSettings, worker_env: Mapping[str, str], reaper: Reaper | None = None
                 ) -> WarmExecutor:
    """VNAS_EXECUTOR_PROCESSES processes running the VNAS_EXECUTOR function (vnas.poolhost).

    They see the worker's environment, as the function would in-process, and its import path.
    """
    assert settings.executor is not None
    env = {**worker_env, "PYTHONPATH": os.pathsep.join(path for path in sys.path if path)}
    argv = [sys.executable, "-m", "vnas.poolhost", settings.executor]
    return WarmExecutor(argv, env, settings.executor, _warm_options(settings, settings.executor_processes, False),
                        reaper)
