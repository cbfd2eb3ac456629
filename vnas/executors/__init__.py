"""Executors: what runs one task XML to an outcome under the task timeout.

`script` starts VNAS_SCRIPT once per task; `python` calls a function in-process. Warm executors (a
long-lived process serving many tasks) belong here too. Everyone else imports from this package.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from vnas.executors.python import PythonExecutor
from vnas.executors.result import normalise_result
from vnas.executors.script import ScriptExecutor
from vnas.settings import VnasSettings
from vnas.task import TaskContext, TaskOutcome
from vncommon.errors import ConfigError

__all__ = ["Executor", "PythonExecutor", "ScriptExecutor", "build_executor", "normalise_result"]


class Executor(Protocol):
    """Runs one task XML to an outcome under the task timeout; a failed task is an outcome."""

    async def run(self, ctx: TaskContext, task_xml: bytes) -> TaskOutcome: ...


def build_executor(settings: VnasSettings, base_env: Mapping[str, str] | None = None) -> Executor:
    """The executor the settings name: a script (VNAS_SCRIPT) or a Python function (VNAS_EXECUTOR)."""
    if settings.script:
        # The worker's own executor: it adopts what scripts leave behind (vnas.reaper).
        return ScriptExecutor(settings.script, settings.task_timeout_s, base_env, allow_env=settings.script_env,
                              max_result_bytes=settings.result_limit, adopt_orphans=True)
    if settings.executor:
        return PythonExecutor(settings.executor, settings.task_timeout_s, settings.result_limit)
    raise ConfigError("set exactly one of VNAS_SCRIPT or VNAS_EXECUTOR")
