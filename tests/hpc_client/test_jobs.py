"""The modules' typed job inputs: decoded from the JSON a job runner hands them, run end to end on files."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from imaging_support import sheet
from integration.demo._files import write_dng
from integration.errors import GroupHeld
from integration.hpc_client.modules.barcode import BarcodeJob, run_barcode
from integration.hpc_client.modules.derivatives import DerivativesJob, run_derivatives
from integration.hpc_client.modules.ocr import OcrJob, run_ocr

GUID = "7e8-8-08-0c-1b-15-2-003-04-000-01e240"


@pytest.fixture
def asset(tmp_path: Path) -> dict[str, object]:
    image, _ = sheet(width=1500, height=2250, barcode="NHMD-000321")
    tif, dng = tmp_path / f"{GUID}.tif", tmp_path / f"{GUID}.dng"
    image.save(tif)
    write_dng(image, dng)
    metadata = {"asset_guid": GUID, "institution": "NHMD", "barcode": [], "tags": {}}
    return {"guid": GUID, "image": str(tif), "raw": str(dng), "metadata": metadata}


def test_barcode_and_ocr_jobs_use_the_metadatas_institution(asset: dict[str, object]) -> None:
    job = msgspec.json.decode(msgspec.json.encode(asset), type=BarcodeJob)
    result = run_barcode(job)
    assert result.barcodes == ["NHMD-000321"]
    assert result.institution == "NHMD"
    ocr = run_ocr(msgspec.json.decode(msgspec.json.encode(asset), type=OcrJob))
    assert ocr.languages[0] == "dan"  # NHMD's labels are read Danish-first
    assert "Carex" in ocr.tags_ocr


def test_an_institution_without_rules_holds_its_group(asset: dict[str, object]) -> None:
    asset["metadata"] = {"institution": "Atlantis"}
    with pytest.raises(GroupHeld):
        run_barcode(msgspec.convert(asset, BarcodeJob))


def test_derivatives_job_from_the_raw_sibling(asset: dict[str, object], tmp_path: Path) -> None:
    job = msgspec.convert({**asset, "out_dir": str(tmp_path / "out"), "from_raw": True}, DerivativesJob)
    result = run_derivatives(job)
    assert [made.guid.split("-")[9] for made in result.derivatives] == ["001", "002"]
    assert all(made.metadata["parent_guid"] == GUID for made in result.derivatives)


def test_a_job_with_an_unknown_field_or_a_wrong_type_is_refused(asset: dict[str, object]) -> None:
    with pytest.raises(msgspec.ValidationError, match="imagee"):
        msgspec.convert({**asset, "imagee": "x"}, BarcodeJob)
    with pytest.raises(msgspec.ValidationError, match="reduced_long_side"):
        msgspec.convert({**asset, "settings": {"reduced_long_side": "big"}}, BarcodeJob)


def test_running_out_of_memory_is_the_nodes_failure(asset: dict[str, object], monkeypatch: pytest.MonkeyPatch) -> None:
    from integration.errors import NodeResourceError
    from integration.hpc_client.modules import barcode as barcode_module

    def exhausted(*args: object, **kwargs: object) -> object:
        raise MemoryError

    monkeypatch.setattr(barcode_module, "read_barcodes_file", exhausted)
    with pytest.raises(NodeResourceError, match="out of memory"):
        run_barcode(msgspec.convert(asset, BarcodeJob))


def test_from_raw_without_a_raw_sibling_is_refused(asset: dict[str, object], tmp_path: Path) -> None:
    from integration.errors import ConfigError

    job = msgspec.convert({**asset, "raw": None, "out_dir": str(tmp_path / "o"), "from_raw": True}, DerivativesJob)
    with pytest.raises(ConfigError, match="no raw sibling"):
        run_derivatives(job)


def test_a_blank_institution_is_no_institution(asset: dict[str, object]) -> None:
    asset["metadata"] = {"institution": "   "}
    result = run_barcode(msgspec.convert(asset, BarcodeJob))
    assert result.institution is None
    assert result.barcodes == []
