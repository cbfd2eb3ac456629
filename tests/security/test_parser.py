"""Parsing touches nothing outside the document: a DOCTYPE is refused before libxml2 could open what it
names, with the same words whether or not that exists, on every path that reads XML in the mesh.

A FIFO is the probe: opening one for reading blocks until a writer comes, so any parser that opens the
path a DOCTYPE names hangs, where a refusal answers at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path

import grpc
import pytest

from tests.conftest import ROOT
from tests.security.memory import MIB, peak_rss
from tests.vnas.conftest import TASK_XML, write_script
from vn.v1 import task_pb2, task_pb2_grpc, valuation_pb2, valuation_pb2_grpc
from vnas.executors import ScriptExecutor
from vnas.servicer import SERVICE_NAME, add_task_service
from vncommon.errors import MalformedXml
from vncommon.grpcutil import ServiceServer, create_channel, decode_error
from vncommon.localmesh import free_port
from vncommon.xmlsafe import DOCTYPE_REFUSED, parse_xml
from vnvs.assembly import InvalidResult, result_valuation
from vnvs.hydration import HydrationEngine, HydrationError, HydrationSettings

pytestmark = pytest.mark.timeout(60)
ANSWER_S = 2.0
VNAPI_PEAK_RSS = 200 * MIB
REQUEST = b"<vnml><project><group><valuation/></group></project></vnml>"
MAX_BYTES = 11 * MIB


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "probe.fifo"
    os.mkfifo(path)
    yield path
    with contextlib.suppress(OSError):  # release a reader that did open it: a failure must not hang the run
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))


def doctype(target: str, root: str = "<vnml/>") -> bytes:
    return f'<!DOCTYPE vnml SYSTEM "{target}">{root}'.encode()


def refusal(parse: Callable[[], object]) -> Exception:
    """The error `parse` raises, within ANSWER_S (a hang fails the test instead of the session)."""
    pool = ThreadPoolExecutor(1)
    try:
        pool.submit(parse).result(timeout=ANSWER_S)
    except FutureTimeout:
        raise AssertionError("parsing blocked: something opened the path the DOCTYPE names") from None
    except Exception as exc:
        return exc
    finally:
        pool.shutdown(wait=False)  # a blocked thread is released when the FIFO fixture ends
    raise AssertionError("the document was accepted")


ENCODINGS = {
    "plain": lambda d: d,
    "after a declaration, comments and PIs": lambda d: b'<?xml version="1.0"?>\n<!-- a -->\n<?pi x?>\n ' + d,
    "UTF-8 with a BOM": lambda d: b"\xef\xbb\xbf" + d,
    "UTF-16 with a BOM": lambda d: ('<?xml version="1.0" encoding="UTF-16"?>' + d.decode()).encode("utf-16"),
    "UTF-16BE without a BOM": lambda d: ('<?xml version="1.0" encoding="UTF-16"?>' + d.decode()).encode("utf-16-be"),
    "UTF-16LE without a BOM": lambda d: ('<?xml version="1.0" encoding="UTF-16"?>' + d.decode()).encode("utf-16-le"),
    "UTF-32 with a BOM": lambda d: ('<?xml version="1.0" encoding="UTF-32"?>' + d.decode()).encode("utf-32"),
}


@pytest.mark.parametrize("encoding", list(ENCODINGS))
def test_a_doctype_naming_a_fifo_is_refused_without_opening_it_in_any_encoding(encoding: str, fifo: Path) -> None:
    error = refusal(lambda: parse_xml(ENCODINGS[encoding](doctype(f"file://{fifo}"))))
    assert isinstance(error, MalformedXml) and DOCTYPE_REFUSED in error.message, error


@pytest.mark.parametrize("target", ["a DTD", "not a DTD", "missing", "directory", "fifo", "stdin", "http"])
def test_the_refusal_reads_the_same_whether_or_not_the_named_path_exists(target: str, fifo: Path) -> None:
    (fifo.parent / "real.dtd").write_text("<!ELEMENT vnml ANY>")
    (fifo.parent / "secret.txt").write_text("password=hunter2\n")
    names = {"a DTD": f"file://{fifo.parent}/real.dtd", "not a DTD": f"file://{fifo.parent}/secret.txt",
             "missing": f"file://{fifo.parent}/missing.dtd",
             "directory": f"file://{fifo.parent}", "fifo": f"file://{fifo}", "stdin": "file:///proc/self/fd/0",
             "http": "http://127.0.0.1:9/x.dtd"}
    error = refusal(lambda: parse_xml(doctype(names[target])))
    assert str(error) == f"document {DOCTYPE_REFUSED} (line 1, column 1)"


@pytest.mark.parametrize("data", [
    b'<?xml version="1.0" encoding="UTF-7"?>+ADw-!DOCTYPE vnml SYSTEM +ACI-file:///proc/self/fd/0+ACI-+AD4-<vnml/>',
    b'<?xml version="1.0" encoding="IBM037"?><vnml/>',
    "<?xml version='1.0' encoding='IBM037'?><vnml/>".encode("cp037"),
])
def test_an_encoding_the_scan_cannot_read_as_libxml2_would_is_refused(data: bytes) -> None:
    with pytest.raises(MalformedXml, match="encoding"):
        parse_xml(data)


def test_documents_in_accepted_encodings_still_parse() -> None:
    for text in ('<?xml version="1.0" encoding="UTF-16"?><vnml>é</vnml>', "<vnml>é</vnml>"):
        for codec in ("utf-8", "utf-16", "utf-32"):
            if "UTF-16" in text and codec != "utf-16":
                continue
            assert parse_xml(text.encode(codec)).text == "é"
    assert parse_xml(b'<?xml version="1.0" encoding="ISO-8859-1"?><vnml>\xe9</vnml>').text == "é"


def test_a_fetched_hydration_document_with_a_doctype_is_refused(tmp_path: Path, fifo: Path) -> None:
    (tmp_path / "m.xml").write_bytes(doctype(f"file://{fifo}", '<market name="M"/>'))
    root = parse_xml(b'<vnml><project><market name="M" href="m.xml"/><group><valuation/></group></project></vnml>')
    engine = HydrationEngine(HydrationSettings(file_roots=(tmp_path,)), "r")
    error = refusal(lambda: engine.prepare(root))
    assert isinstance(error, HydrationError) and DOCTYPE_REFUSED in error.message and "m.xml" in error.message


def test_a_task_result_with_a_doctype_is_refused_by_vnvs(fifo: Path) -> None:
    error = refusal(lambda: result_valuation(doctype(f"file://{fifo}", "<valuation/>"), 0, 1))
    assert isinstance(error, InvalidResult) and DOCTYPE_REFUSED in error.message


@pytest.fixture
async def vnas_stub(tmp_path: Path, fifo: Path) -> AsyncIterator[task_pb2_grpc.TaskServiceStub]:
    """A real TaskService whose script prints a result declaring a DOCTYPE that names the FIFO."""
    script = write_script(tmp_path, f"echo '<!DOCTYPE valuation SYSTEM \"file://{fifo}\"><valuation/>'")
    server = ServiceServer(MAX_BYTES, [SERVICE_NAME])
    add_task_service(server.server, ScriptExecutor(script, 5.0, dict(os.environ)))
    port = server.bind("127.0.0.1:0")
    await server.start()
    channel = create_channel(f"127.0.0.1:{port}", MAX_BYTES)
    yield task_pb2_grpc.TaskServiceStub(channel)
    await channel.close()
    await server.stop(0)


async def test_vnas_refuses_a_doctype_in_task_xml_and_in_script_output(
        vnas_stub: task_pb2_grpc.TaskServiceStub, fifo: Path) -> None:
    call = task_pb2.ExecuteTaskRequest(request_id="r", task_id="1", valuation_name="v", attempt=1,
                                       task_xml=doctype(f"file://{fifo}"))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await vnas_stub.ExecuteTask(call, timeout=ANSWER_S)
    assert decode_error(caught.value).reason == "MALFORMED_XML" and DOCTYPE_REFUSED in caught.value.details()
    call.task_xml = TASK_XML
    outcome = await vnas_stub.ExecuteTask(call, timeout=10)
    assert outcome.status == task_pb2.TASK_OUTCOME_STATUS_FAILED and DOCTYPE_REFUSED in outcome.error


async def test_vnapi_answers_a_doctype_naming_its_own_open_stdin_at_once_and_keeps_serving(
        base_env: dict[str, str]) -> None:
    port = free_port()
    env = {**base_env, "GRPC_PORT": str(port), "VNVS_ADDRESS": f"127.0.0.1:{free_port()}"}
    # stdin stays open and silent: a parser that opened /proc/self/fd/0 would wait on it for ever.
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "vnapi", env=env, cwd=ROOT, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            await asyncio.wait_for(channel.channel_ready(), 30)
            api = valuation_pb2_grpc.ValuationServiceStub(channel)
            started = time.monotonic()
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await api.Submit(valuation_pb2.SubmitRequest(xml=doctype("file:///proc/self/fd/0")), timeout=10)
            elapsed = time.monotonic() - started
            error = decode_error(caught.value)
            assert (caught.value.code(), error.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "MALFORMED_XML")
            assert DOCTYPE_REFUSED in error.message
            assert elapsed < ANSWER_S, elapsed
            assert peak_rss(process.pid) < VNAPI_PEAK_RSS
            reply = await api.Submit(valuation_pb2.SubmitRequest(xml=REQUEST), timeout=10)
            assert reply.request_id
    finally:
        process.kill()
        await process.wait()


# Parser entry points of lxml and the standard library; only vncommon/xmlsafe.py may use them.
_PARSERS = re.compile(r"etree\.(fromstring|XML|parse|iterparse|XMLParser|XMLPullParser|HTML|fromstringlist)\b"
                      r"|\bxml\.(etree|dom|sax|parsers)\b|\bminidom\b|\bexpat\b")
_PACKAGES = ("vncommon", "vnapi", "vnvs", "vnas", "gateway", "vnclient")


def test_no_module_of_the_mesh_parses_xml_except_through_xmlsafe() -> None:
    offenders = []
    for package in _PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if path == ROOT / "vncommon" / "xmlsafe.py":
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if _PARSERS.search(line):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "parse XML with vncommon.xmlsafe.parse_xml:\n" + "\n".join(offenders)


def test_the_scan_itself_finds_a_parser_call() -> None:
    assert _PARSERS.search("root = etree.fromstring(data)") and _PARSERS.search("from xml.dom import minidom")
    assert not _PARSERS.search("root = parse_xml(data)")

