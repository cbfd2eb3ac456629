"""Helpers of the warm executor tests: tasks naming a behaviour of tests/vnas/scripts/warm_pricer.py."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from lxml import etree

from tests.vnas.conftest import write_script
from vnas.executors import WarmExecutor, persistent_script, process_pool
from vnas.settings import VnasSettings
from vnas.task import TaskContext, TaskOutcome

SCRIPTS = Path(__file__).resolve().parent / "scripts"
PRICER = SCRIPTS / "warm_pricer.py"
POOL_TARGET = "tests.vnas.scripts.warm_pricer:pool_value"


def task(behaviour: str) -> bytes:
    return (f'<vnml><project name="p"><group name="g"><valuation name="bond"><instrument name="UST10">'
            f"<behaviour>{behaviour}</behaviour></instrument><analytics><price><amount/></price></analytics>"
            f"</valuation></group></project></vnml>").encode()


def ctx(task_id: str = "1", attempt: int = 1) -> TaskContext:
    return TaskContext(request_id="req-w", group_index=0, task_id=task_id, attempt=attempt, valuation_name="bond",
                       trace_id="trace-w")


def python_script(directory: Path, path: Path = PRICER, name: str = "pricer.sh") -> str:
    """An executable that runs `path` with this interpreter (the script's PATH has no virtualenv)."""
    return write_script(directory, f'exec "{sys.executable}" "{path}" "$@"', name=name)


def persistent(script: str, **settings: Any) -> WarmExecutor:
    values: dict[str, Any] = {"script": script, "script_mode": "persistent", "concurrency": 2,
                              "task_timeout_ms": 10_000}
    values.update(settings)
    return persistent_script(VnasSettings(**values), dict(os.environ))


def pool(**settings: Any) -> WarmExecutor:
    values: dict[str, Any] = {"executor": POOL_TARGET, "executor_processes": 2, "task_timeout_ms": 10_000}
    values.update(settings)
    return process_pool(VnasSettings(**values), dict(os.environ))


def identity(outcome: TaskOutcome) -> dict[str, str]:
    """The attributes a `whoami` or `hold` task returns (pid, task, attempt, times)."""
    assert outcome.completed, outcome.error
    return dict(etree.fromstring(outcome.result_xml).attrib)


def pid_of(outcome: TaskOutcome) -> int:
    return int(identity(outcome)["pid"])
