"""`vn hydrate` run in-process."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.vnvs.conftest import SPEC_EXAMPLE
from vncommon.xmlsafe import parse_xml
from vnvs.hydrate_cli import main

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
