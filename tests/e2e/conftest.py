"""A real mesh for end-to-end tests: vnapi, vnvs, vnas workers and the gateway as separate processes."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, RedisServer
from vncommon.localmesh import LocalMesh

EXAMPLES = ROOT / "examples"
Mesh = LocalMesh
MeshFactory = Callable[..., LocalMesh]

# Short timings so failures, retries and reclaims happen within a test's time limit.
TEST_ENV = {
    "LOG_LEVEL": "INFO",
    "VNAS_SCRIPT": str(EXAMPLES / "price.py"),
    "HYDRATION_FILE_ROOTS": str(EXAMPLES),
    "VNVS_RETRY_BASE_MS": "20",
    "VNVS_RETRY_CAP_MS": "200",
    "DEFAULT_BLOCK_MS": "500",
    "VNAS_CLAIM_IDLE_MS": "2000",
    "SYNC_WAIT_TIMEOUT_MS": "30000",
}


@pytest.fixture
def start_mesh(redis_server: RedisServer, tmp_path: Path) -> Iterator[MeshFactory]:
    """Start a whole mesh; keyword arguments become environment variables of every service."""
    meshes: list[LocalMesh] = []

    def factory(workers: int = 2, gateway: bool = True, **env: str) -> LocalMesh:
        base = {k: v for k, v in os.environ.items() if not k.startswith(("VN", "REDIS", "HYDRATION", "GRPC"))}
        base.update({**redis_server.env, **TEST_ENV, **env})
        logs = tmp_path / f"mesh{len(meshes)}"
        logs.mkdir()
        mesh = LocalMesh(env=base, log_dir=logs)
        meshes.append(mesh)
        try:
            mesh.start_all(workers=workers, gateway=gateway)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}\n{mesh.log_tail()}") from None
        return mesh

    yield factory
    for mesh in meshes:
        mesh.stop()
