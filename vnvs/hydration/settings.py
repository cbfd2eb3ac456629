"""Hydration limits and sources, read once from the environment and then passed down."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from vncommon.config import env_int
from vncommon.errors import ConfigError

MIB = 1024 * 1024
DEFAULT_MAX_FETCH_BYTES = 16 * MIB
DEFAULT_MAX_FETCHES = 64
DEFAULT_MAX_CLONES_PER_GROUP = 100_000
DEFAULT_MAX_GROUP_TASK_BYTES = 512 * MIB
DEFAULT_MAX_PASSES = 32
DEFAULT_MAX_SECONDS = 30
DEFAULT_MAX_MEMORY_BYTES = 2048 * MIB
DEFAULT_PROCESSES = 2
# Below this a hydration process cannot even import lxml.
MIN_MEMORY_BYTES = 256 * MIB


@dataclass(frozen=True, slots=True)
class HydrationSettings:
    """Where hydration may read from and how much work one request may cause."""

    file_roots: tuple[Path, ...] = ()
    s3_buckets: tuple[str, ...] = ()
    max_fetch_bytes: int = DEFAULT_MAX_FETCH_BYTES
    max_fetches: int = DEFAULT_MAX_FETCHES
    max_clones_per_group: int = DEFAULT_MAX_CLONES_PER_GROUP
    max_group_task_bytes: int = DEFAULT_MAX_GROUP_TASK_BYTES
    max_passes: int = DEFAULT_MAX_PASSES
    # The sandbox: CPU seconds a request's hydration may use in all, address space of each hydration
    # process, and how many such processes run hydrations at once.
    max_seconds: int = DEFAULT_MAX_SECONDS
    max_memory_bytes: int = DEFAULT_MAX_MEMORY_BYTES
    processes: int = DEFAULT_PROCESSES

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> HydrationSettings:
        """Build settings from HYDRATION_* variables; a bad value raises ConfigError naming it."""
        return cls(
            file_roots=_roots(env, "HYDRATION_FILE_ROOTS"),
            s3_buckets=_buckets(env, "HYDRATION_S3_BUCKETS"),
            max_fetch_bytes=_positive(env, "HYDRATION_MAX_FETCH_BYTES", DEFAULT_MAX_FETCH_BYTES),
            max_fetches=_positive(env, "HYDRATION_MAX_FETCHES", DEFAULT_MAX_FETCHES),
            max_clones_per_group=_positive(env, "HYDRATION_MAX_CLONES_PER_GROUP", DEFAULT_MAX_CLONES_PER_GROUP),
            max_group_task_bytes=_positive(env, "HYDRATION_MAX_GROUP_TASK_BYTES", DEFAULT_MAX_GROUP_TASK_BYTES),
            max_passes=_positive(env, "HYDRATION_MAX_PASSES", DEFAULT_MAX_PASSES),
            max_seconds=_positive(env, "HYDRATION_MAX_SECONDS", DEFAULT_MAX_SECONDS),
            max_memory_bytes=env_int(env, "HYDRATION_MAX_MEMORY_BYTES", DEFAULT_MAX_MEMORY_BYTES,
                                     minimum=MIN_MEMORY_BYTES),
            processes=env_int(env, "HYDRATION_PROCESSES", DEFAULT_PROCESSES, minimum=1, maximum=64),
        )


def _split(value: str, separators: str) -> list[str]:
    for separator in separators[1:]:
        value = value.replace(separator, separators[0])
    return [part.strip() for part in value.split(separators[0]) if part.strip()]


def _roots(env: Mapping[str, str], name: str) -> tuple[Path, ...]:
    roots: list[Path] = []
    for part in _split(env.get(name, ""), os.pathsep + ","):
        path = Path(part)
        if not path.is_absolute():
            raise ConfigError(f"{name}: {part!r} is not an absolute path")
        if not path.is_dir():
            raise ConfigError(f"{name}: {part!r} is not a directory")
        roots.append(path)
    return tuple(roots)


def _buckets(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    buckets = tuple(_split(env.get(name, ""), ","))
    for bucket in buckets:
        # S3 bucket names are 3-63 characters of lower case letters, digits, dots and hyphens.
        if not 3 <= len(bucket) <= 63 or not all(c.islower() or c.isdigit() or c in ".-" for c in bucket):
            raise ConfigError(f"{name}: {bucket!r} is not a valid S3 bucket name")
    return buckets


def _positive(env: Mapping[str, str], name: str, default: int) -> int:
    return env_int(env, name, default, minimum=1)
