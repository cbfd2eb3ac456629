"""The admission budget: its default from the memory limit, its setting, and the accounting of one instance."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vncommon.errors import ConfigError
from vnvs import admission
from vnvs.admission import MEMORY_FACTOR, PROCESS_RESERVE_BYTES, Admission, default_inflight_bytes, memory_limit
from vnvs.hydration import HydrationSettings
from vnvs.settings import VnvsSettings

GIB = 1024**3
PAYLOAD = 10 * 1024 * 1024


def test_the_default_is_the_memory_left_after_the_reserves_divided_by_the_factor() -> None:
    hydration = HydrationSettings(processes=2, max_memory_bytes=GIB)
    expected = (16 * GIB - PROCESS_RESERVE_BYTES - 2 * GIB) // MEMORY_FACTOR
    assert default_inflight_bytes(16 * GIB, hydration, PAYLOAD) == expected


def test_the_default_never_falls_below_one_largest_request() -> None:
    assert default_inflight_bytes(GIB, HydrationSettings(processes=4, max_memory_bytes=GIB), PAYLOAD) == PAYLOAD


@pytest.mark.parametrize(("v2", "v1", "expected"), [
    ("2147483648\n", None, 2 * GIB),
    ("max\n", "1073741824\n", GIB),
    ("max\n", str(1 << 62), None),
    (None, None, None),
])
def test_the_memory_limit_is_the_tightest_cgroup_limit_else_the_machine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, v2: str | None, v1: str | None, expected: int | None
) -> None:
    if v2 is not None:
        (tmp_path / "memory.max").write_text(v2)
    if v1 is not None:
        (tmp_path / "memory").mkdir()
        (tmp_path / "memory" / "memory.limit_in_bytes").write_text(v1)
    monkeypatch.setattr(admission, "CGROUP_ROOT", tmp_path)
    monkeypatch.setattr(admission, "_own_cgroup_v2", lambda: None)
    machine = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    assert memory_limit() == (expected if expected is not None else machine)


def test_the_setting_is_read_and_a_bad_value_is_refused_naming_it() -> None:
    assert VnvsSettings.from_env({"VNVS_MAX_INFLIGHT_BYTES": "123456"}).max_inflight_bytes == 123456
    assert VnvsSettings.from_env({}).max_inflight_bytes >= PAYLOAD
    for bad in ("0", "-5", "lots"):
        with pytest.raises(ConfigError, match="VNVS_MAX_INFLIGHT_BYTES"):
            VnvsSettings.from_env({"VNVS_MAX_INFLIGHT_BYTES": bad})


def test_requests_are_held_until_released_and_the_peak_is_kept() -> None:
    budget = Admission(100)
    assert budget.fits(60) and not budget.too_large(100) and budget.too_large(101)
    budget.hold("a", 60)
    assert not budget.fits(41) and budget.fits(40)
    budget.hold("b", 40)
    budget.release("a")
    assert (budget.in_flight, budget.peak) == (40, 100)
