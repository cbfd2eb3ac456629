"""The whole mesh with mutual TLS on every gRPC hop (gateway → vnapi → vnvs, and the workers' servers)."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from tests.common.tls_certs import make_pki
from tests.e2e.conftest import MeshFactory
from tests.e2e.helpers import response_groups, simple_request
from vnclient import ClientSettings, ValuationClient
from vncommon.config import TlsSettings
from vncommon.errors import Unavailable

pytestmark = pytest.mark.timeout(120)


async def test_a_request_runs_end_to_end_with_mutual_tls_everywhere(start_mesh: MeshFactory, tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    mesh = start_mesh(**pki.env(mutual=True))
    async with aiohttp.ClientSession() as http, http.post(
        f"{mesh.http}/valuation?sync=Y", data=simple_request(groups=2, tasks=3),
        headers={"Content-Type": "application/xml"},
    ) as response:
        assert response.status == 200, await response.text() + mesh.log_tail()
        assert [len(g) for g in response_groups(await response.read())] == [3, 3]
    tls = TlsSettings.from_env(pki.env(mutual=True))
    async with ValuationClient(ClientSettings(address=mesh.vnapi_address, tls=tls)) as client:
        reply = await client.submit(simple_request(tasks=2), sync=True)
        assert await client.results(reply.request_id) == reply.response_xml
    plaintext = ValuationClient(ClientSettings(address=mesh.vnapi_address, call_timeout_s=3))
    try:
        with pytest.raises(Unavailable):
            await plaintext.submit(simple_request(tasks=1))
    finally:
        await plaintext.close()
