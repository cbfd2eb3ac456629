"""Fixtures for hydration tests: request builders, an engine factory, a moto S3 server, plugin installs."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from lxml import etree

from tests.vnvs.run_support import close_shared_sandbox
from vncommon.xmlsafe import parse_xml
from vnvs.hydration import HydrationEngine, HydrationSettings, TaskDocument

SPEC_EXAMPLE = b"""<?xml version="1.0" encoding="UTF-8"?>
<?vnvs $VALUATION_DATE = "2025-06-30" ?>
<vnml>
  <project name="eod">
    <market name="EOD" href="s3://bucket/markets/eod.xml"/>
    <model name="HW1F"><meanReversion>0.03</meanReversion></model>
    <calculator name="bond"/>
    <portfolio>
      <instrument name="UST10"><coupon>0.0425</coupon></instrument>
      <instrument name="UST30"><coupon>0.0450</coupon></instrument>
    </portfolio>
    <group name="price">
      <valuation name="bond" use="vn:link(/vnml/project/portfolio, instrument)">
        <instrument select="."/>
        <market select="/vnml/project/market[@name='EOD']"/>
        <calculator select="/vnml/project/calculator"/>
        <analytics><evaluation><date>$VALUATION_DATE</date></evaluation>
          <price><amount/></price></analytics>
      </valuation>
    </group>
    <group name="risk">
      <valuation name="dv01" use="vn:link(/vnml/project/group[1], valuation)">
        <instrument select="./instrument"/>
        <basePrice select="./analytics/price/amount"/>
      </valuation>
    </group>
  </project>
</vnml>
"""

EOD_MARKET = b'<vnml><project><market name="EOD"><curve name="USD">0.04</curve></market></project></vnml>'


def make_request(body: str, reference: str = "", declarations: str = "") -> etree._Element:
    """Parse a request whose project holds `reference` then `body` (the groups)."""
    text = f'<?xml version="1.0"?>{declarations}<vnml><project name="p">{reference}{body}</project></vnml>'
    return parse_xml(text.encode())


def valuation_of(document: TaskDocument) -> etree._Element:
    """The one valuation inside a task document."""
    found = parse_xml(document.xml).findall("project/group/valuation")
    assert len(found) == 1
    return found[0]


EngineFactory = Callable[..., HydrationEngine]


@pytest.fixture
def engine_factory(tmp_path: Path) -> EngineFactory:
    """Build engines reading files under tmp_path unless told otherwise."""

    def build(request_id: str = "req-1", s3: Callable[[], Any] | None = None, **overrides: Any) -> HydrationEngine:
        overrides.setdefault("file_roots", (tmp_path,))
        return HydrationEngine(HydrationSettings(**overrides), request_id, s3_client_factory=s3)

    return build


@pytest.fixture
def hydrate(engine_factory: EngineFactory) -> Callable[..., list[TaskDocument]]:
    """prepare + hydrate_group in one call: hydrate(root, group=0, **settings)."""

    def run(root: etree._Element, group: int = 0, **overrides: Any) -> list[TaskDocument]:
        engine = engine_factory(**overrides)
        engine.prepare(root)
        return engine.hydrate_group(root, group)

    return run


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server on a free loopback port for the whole session."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_factory(s3_endpoint: str) -> Callable[[], Any]:
    """A client factory bound to the moto server with dummy credentials."""

    def factory() -> Any:
        return boto3.client(
            "s3",
            endpoint_url=s3_endpoint,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )

    return factory


@pytest.fixture
def s3_bucket(s3_factory: Callable[[], Any]) -> Callable[[str, dict[str, bytes]], None]:
    """Create a bucket holding the given objects."""

    def create(bucket: str, objects: dict[str, bytes]) -> None:
        client = s3_factory()
        client.create_bucket(Bucket=bucket)
        for key, body in objects.items():
            client.put_object(Bucket=bucket, Key=key, Body=body)

    return create


@pytest.fixture
def install_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str, str], None]:
    """Install a module and a `vn.functions` entry point for it through a *.dist-info on sys.path."""

    def install(name: str, source: str) -> None:
        site = tmp_path / "site"
        module = f"vn_test_plugin_{name}"
        (site / f"{module}-0.1.dist-info").mkdir(parents=True)
        (site / f"{module}.py").write_text(textwrap.dedent(source))
        info = site / f"{module}-0.1.dist-info"
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
        (info / "entry_points.txt").write_text(f"[vn.functions]\n{name} = {module}:function\n")
        monkeypatch.syspath_prepend(str(site))
        monkeypatch.delitem(sys.modules, module, raising=False)

    return install


@pytest.fixture(scope="session", autouse=True)
async def _stop_the_shared_sandbox() -> AsyncIterator[None]:
    """The in-process run tests share one hydration sandbox; its worker processes stop with the session."""
    yield
    await close_shared_sandbox()
