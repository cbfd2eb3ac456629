"""`vn hydrate` (the hydration preview) run in-process, and once as a process whose reader leaves early."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.vnvs.conftest import SPEC_EXAMPLE
from vncommon.xmlsafe import parse_xml
from vnvs.hydration.preview import main

LOCAL_SPEC = SPEC_EXAMPLE.replace(b"s3://bucket/markets/eod.xml", b"markets/eod.xml")


@pytest.fixture
def request_file(tmp_path: Path) -> Path:
    (tmp_path / "markets").mkdir()
    (tmp_path / "markets" / "eod.xml").write_bytes(b'<market name="EOD"><curve name="USD">0.04</curve></market>')
    path = tmp_path / "request.xml"
    path.write_bytes(LOCAL_SPEC)
    return path


def test_it_prints_every_groups_task_documents(request_file: Path, capsys):
    assert main([str(request_file)]) == 0
    out = capsys.readouterr().out
    assert out.count("=== group 0 (price) task") == 2 and out.count("=== group 1 (risk) task") == 2
    assert '<curve name="USD">0.04</curve>' in out


def test_it_prints_only_the_chosen_group_and_writes_files(request_file: Path, tmp_path: Path, capsys):
    out_dir = tmp_path / "out"
    assert main([str(request_file), "--group", "1", "--out", str(out_dir)]) == 0
    assert "group 0" not in capsys.readouterr().out
    task = parse_xml((out_dir / "1" / "2.xml").read_bytes())
    assert task.find("project/group").get("name") == "risk"
    assert task.find("project/group/valuation/vndb").get("externalId") == "2"


def test_it_reads_earlier_results_from_the_results_directory(request_file: Path, tmp_path: Path):
    results = tmp_path / "results" / "0"
    results.mkdir(parents=True)
    for task_id in ("1", "2"):
        (results / f"{task_id}.xml").write_bytes(
            f'<valuation name="bond"><instrument name="I{task_id}"/><analytics><price><amount>9{task_id}</amount>'
            "</price></analytics></valuation>".encode()
        )
    out_dir = tmp_path / "out"
    assert main([str(request_file), "--group", "1", "--results", str(tmp_path / "results"), "--out", str(out_dir)]) == 0
    task = parse_xml((out_dir / "1" / "2.xml").read_bytes())
    assert task.findtext("project/group/valuation/amount") == "92"


def test_a_hydration_error_is_reported_with_its_location_and_exit_code_1(tmp_path: Path, capsys):
    path = tmp_path / "request.xml"
    path.write_bytes(
        b'<vnml><project><group name="g"><valuation name="v"><m select="/none"/></valuation></group></project></vnml>'
    )
    assert main([str(path)]) == 1
    err = capsys.readouterr().err
    assert "/none" in err and "/vnml/project/group/valuation[1]/m" in err and "'g'" in err


@pytest.mark.parametrize("content", [b"<vnml><unclosed></vnml>", b""])
def test_malformed_input_exits_with_2(tmp_path: Path, content: bytes, capsys):
    path = tmp_path / "request.xml"
    path.write_bytes(content)
    assert main([str(path)]) == 2
    assert "vn hydrate:" in capsys.readouterr().err


def test_a_missing_file_or_group_exits_with_2(request_file: Path, tmp_path: Path):
    assert main([str(tmp_path / "absent.xml")]) == 2
    assert main([str(request_file), "--group", "5"]) == 2


def test_a_bad_environment_setting_exits_with_2(request_file: Path, monkeypatch: pytest.MonkeyPatch, capsys):
    monkeypatch.setenv("HYDRATION_MAX_PASSES", "zero")
    assert main([str(request_file)]) == 2
    assert "HYDRATION_MAX_PASSES" in capsys.readouterr().err


def test_a_namespaced_request_is_refused_as_vnapi_refuses_it(tmp_path: Path, capsys):
    path = tmp_path / "request.xml"
    path.write_bytes(b'<vnml xmlns="urn:x"><project><group><valuation name="v"/></group></project></vnml>')
    assert main([str(path)]) == 2
    err = capsys.readouterr().err
    assert "<vnml> is in namespace 'urn:x'" in err and "no namespace" in err


def _fan_out_request(tmp_path: Path, instruments: int) -> Path:
    rows = "".join(f'<instrument name="I{n}"><coupon>0.0{n % 9}</coupon></instrument>' for n in range(instruments))
    path = tmp_path / "wide.xml"
    path.write_text(
        f'<vnml><project><portfolio>{rows}</portfolio><group name="g">'
        '<valuation name="v" use="vn:link(/vnml/project/portfolio, instrument)"><instrument select="."/>'
        "</valuation></group></project></vnml>"
    )
    return path


def test_a_reader_that_leaves_early_gets_no_traceback_and_every_file_is_still_written(tmp_path: Path):
    # Far more output than a pipe buffers, so the tool is still printing when the reader closes.
    request = _fan_out_request(tmp_path, 2000)
    out_dir = tmp_path / "out"
    command = [sys.executable, "-m", "vnclient.cli", "hydrate", str(request), "--out", str(out_dir)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    first = process.stdout.readline()
    process.stdout.close()  # what `| head -1` does once it has its line
    err = process.stderr.read()
    process.stderr.close()
    assert process.wait(timeout=60) == 0, err
    assert first.startswith(b"=== group 0 (g) task 1 (v)")
    assert err == b""
    assert len(list((out_dir / "0").glob("*.xml"))) == 2000


def test_the_preview_loads_no_service_code():
    # The client imports the preview by name; it must not drag in Redis or the vnvs service with it.
    service = ("redis", "vnvs.server", "vnvs.servicer", "vnvs.sequencer", "vnvs.dispatch", "vnvs.ledger")
    probe = f"import sys; import vnclient.cli; from vnvs.hydration import preview; print([m for m in {service!r} "
    probe += "if m in sys.modules])"
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, check=True, timeout=60)
    assert done.stdout.strip() == b"[]"
