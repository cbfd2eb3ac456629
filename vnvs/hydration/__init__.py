"""Hydration: turns a VNML request's valuations into self-contained task XML (SPEC sections 7 and 8)."""

from vnvs.hydration.engine import HydrationEngine
from vnvs.hydration.errors import GroupRef, HydrationError
from vnvs.hydration.functions import FunctionContext
from vnvs.hydration.settings import HydrationSettings
from vnvs.hydration.taskdoc import TaskDocument

__all__ = [
    "FunctionContext",
    "GroupRef",
    "HydrationEngine",
    "HydrationError",
    "HydrationSettings",
    "TaskDocument",
]
