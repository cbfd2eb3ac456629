"""`make run` (vn-run) values with the QuantLib pricers unless a script or executor is chosen."""

from __future__ import annotations

import pytest

from vnas.settings import VnasSettings
from vncommon import launcher


def test_without_a_choice_vn_run_uses_the_quantlib_pricers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VNAS_SCRIPT", raising=False)
    monkeypatch.delenv("VNAS_EXECUTOR", raising=False)
    env = launcher._mesh_env("redis://127.0.0.1:1/0")
    assert env["VNAS_EXECUTOR"] == "python:pricers:value" and "VNAS_SCRIPT" not in env
    settings = VnasSettings.from_env(env)  # values the worker accepts
    assert settings.executor == "pricers:value"
    assert settings.executor_processes >= 1  # warm: a pool of processes that loaded QuantLib once


def test_a_chosen_script_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VNAS_SCRIPT", "examples/price.py")
    monkeypatch.delenv("VNAS_EXECUTOR", raising=False)
    assert "VNAS_EXECUTOR" not in launcher._mesh_env("redis://127.0.0.1:1/0")
