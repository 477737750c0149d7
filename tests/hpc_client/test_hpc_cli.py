"""``integration hpc ...``: what a person and a job script see, and the exit codes they rely on."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image
from typer.testing import CliRunner

from imaging_support import sheet
from integration.cli import app

GUID = "7e8-8-08-0c-1b-15-2-003-04-000-01e240"


def _sheet_file(tmp_path: Path) -> Path:
    image, _ = sheet(width=1500, height=2250, barcode="NHMD-000123")
    path = tmp_path / "sheet.png"
    image.save(path)
    return path


def test_barcode_prints_a_summary_and_json(tmp_path: Path) -> None:
    path = _sheet_file(tmp_path)
    human = CliRunner().invoke(app, ["hpc", "barcode", str(path), "--institution", "NHMD"])
    assert human.exit_code == 0, human.output
    assert "sheet.png: specimen NHMD-000123" in human.output
    machine = CliRunner().invoke(app, ["hpc", "barcode", str(path), "-i", "NHMD", "--json"])
    document = json.loads(machine.stdout)
    assert document["barcodes"] == ["NHMD-000123"]
    assert document["asset_subject"] == "specimen"
    assert document["module"] == "barcode"
    assert document["version"]


def test_no_code_is_an_honest_empty_result_with_exit_0(tmp_path: Path) -> None:
    path = tmp_path / "blank.png"
    Image.new("RGB", (800, 1200), (238, 232, 212)).save(path)
    result = CliRunner().invoke(app, ["hpc", "barcode", str(path)])
    assert result.exit_code == 0
    assert "no barcode found" in result.output


def test_exit_codes_for_bad_files_and_bad_usage(tmp_path: Path) -> None:
    broken = tmp_path / "broken.tif"
    broken.write_bytes(b"II*\x00garbage")
    unreadable = CliRunner().invoke(app, ["hpc", "barcode", str(broken)])
    assert unreadable.exit_code == 1
    assert "broken.tif" in unreadable.stderr
    unknown = CliRunner().invoke(app, ["hpc", "barcode", str(_sheet_file(tmp_path)), "-i", "Atlantis"])
    assert unknown.exit_code == 2
    assert "known: NHMD" in unknown.stderr
    bad_guid = CliRunner().invoke(app, ["hpc", "derivatives", str(broken), "--guid", "x", "--out", str(tmp_path)])
    assert bad_guid.exit_code == 2  # the GUID is checked before the (broken) file is read


def test_download_exit_codes_tell_temporary_from_permanent(tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    refused = CliRunner().invoke(
        app, ["hpc", "download", f"http://127.0.0.1:{port}/x.tif", "--out", str(tmp_path / "x"), "--crc32", "1"]
    )
    assert refused.exit_code == 75, refused.output  # nobody answers: retry later
    malformed = CliRunner().invoke(
        app, ["hpc", "download", "http://[::1/x", "--out", str(tmp_path / "x"), "--crc32", "1"]
    )
    assert malformed.exit_code == 1  # the link itself is wrong


def test_derivatives_writes_both_files_with_metadata(tmp_path: Path) -> None:
    path = _sheet_file(tmp_path)
    metadata = tmp_path / "meta.json"
    metadata.write_text(json.dumps({"asset_guid": GUID, "institution": "NHMD", "tags": {}}))
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["hpc", "derivatives", str(path), "--guid", GUID, "--out", str(out), "--metadata", str(metadata), "--json"]
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert [Path(d["path"]).exists() for d in document["derivatives"]] == [True, True]
    assert document["derivatives"][0]["metadata"]["parent_guid"] == GUID
    missing = CliRunner().invoke(
        app, ["hpc", "derivatives", str(path), "--guid", GUID, "--out", str(out), "--metadata", str(tmp_path / "no")]
    )
    assert missing.exit_code == 2
    assert "--metadata" in missing.stderr


def test_ocr_and_cleanup_commands(tmp_path: Path) -> None:
    path = _sheet_file(tmp_path)
    ocr = CliRunner().invoke(app, ["hpc", "ocr", str(path), "-i", "NHMD"])
    assert ocr.exit_code == 0
    assert "Carex nigra" in ocr.output
    root = tmp_path / "jobs"
    (root / "job").mkdir(parents=True)
    (root / "job" / "x.tif").write_bytes(b"123")
    cleaned = CliRunner().invoke(app, ["hpc", "cleanup", str(root / "job"), "--job-root", str(root)])
    assert cleaned.exit_code == 0
    assert "removed 1 file(s)" in cleaned.output
    refused = CliRunner().invoke(app, ["hpc", "cleanup", str(tmp_path), "--job-root", str(root)])
    assert refused.exit_code == 2
    assert tmp_path.exists()


def test_codes_that_are_no_specimen_codes_are_not_called_not_found(tmp_path: Path) -> None:
    from imaging_support import add_code128

    path = tmp_path / "other.png"
    add_code128(Image.new("RGB", (1200, 900), (238, 232, 212)), "XYZ 123", at=(200, 300)).save(path)
    result = CliRunner().invoke(app, ["hpc", "barcode", str(path), "-i", "NHMD"])
    assert result.exit_code == 0
    assert "1 code(s) read, none of them a specimen code" in result.output
    assert "XYZ 123" in result.output
