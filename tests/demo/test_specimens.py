"""Demo specimens: GUIDs, metadata v2_1_0, the files of a session and the fast benchmark path."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

import msgspec
import numpy as np
import pytest
import rawpy
from PIL import Image
from pyzbar.pyzbar import decode

from integration.demo._specimens import (
    DEMO_UTC_OFFSET,
    TAXA,
    SpecimenSpec,
    generate_session,
    make_barcode,
    make_guid,
    metadata_v2_1_0,
    write_plain_asset,
    write_specimen,
)
from integration.domain import DasscoGuid
from integration.hpc_client.modules.barcode import read_barcodes_file

TAKEN = datetime(2024, 8, 8, 12, 27, 21, tzinfo=timezone(timedelta(hours=2)))
SMALL = SpecimenSpec(width=600, height=900)

# original-integration.md §3.1: every key of template v2_1_0 and the types real files carry
V2_1_0_TYPES: dict[str, type | tuple[type, ...]] = {
    "asset_created_by": str,
    "asset_deleted_by": str,
    "asset_guid": str,
    "asset_pid": str,
    "asset_subject": str,
    "date_asset_taken": str,
    "asset_updated_by": str,
    "audited": bool,
    "audited_by": str,
    "audited_date": (str, type(None)),
    "barcode": list,
    "collection": str,
    "date_asset_created": (str, type(None)),
    "date_asset_deleted": (str, type(None)),
    "date_asset_finalised": (str, type(None)),
    "date_asset_updated": (str, type(None)),
    "date_metadata_created": str,
    "date_metadata_updated": (str, type(None)),
    "date_metadata_uploaded": (str, type(None)),
    "digitiser": str,
    "external_publisher": list,
    "file_format": str,
    "funding": str,
    "institution": str,
    "metadata_created_by": str,
    "metadata_updated_by": str,
    "metadata_uploaded_by": str,
    "multispecimen": bool,
    "parent_guid": (str, type(None)),
    "payload_type": list,
    "pipeline_name": str,
    "preparation_type": str,
    "pushed_to_specify_date": (str, type(None)),
    "restricted_access": list,
    "specimen_pid": str,
    "status": str,
    "tags": dict,
    "workstation_name": str,
}


def _load_json(path: Path) -> dict[str, object]:
    return msgspec.json.decode(path.read_bytes(), type=dict[str, object])


@pytest.fixture(scope="module")
def specimen(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path], str, str]:
    """One default-size specimen written once for the tests that only read it."""
    session = tmp_path_factory.mktemp("session")
    asset = write_specimen(session, spec=SpecimenSpec(), rng=random.Random(11), taken=TAKEN)
    return session, list(asset.files), asset.guid, asset.barcode


def test_guid_parses_back_with_the_capture_time() -> None:
    """make_guid builds a GUID that DasscoGuid.parse accepts and whose encoded time is the capture time."""
    guid = make_guid(random.Random(1), TAKEN, institution_index=2, collection_index=3, workstation_index=4)
    parsed = DasscoGuid.parse(guid)
    assert parsed.taken_at() == TAKEN.replace(tzinfo=None)
    assert (parsed.institution, parsed.collection, parsed.workstation, parsed.derivative) == (2, 3, 4, 0)


def test_barcode_and_guid_are_deterministic_per_rng() -> None:
    """The same rng state gives the same GUID and barcode; barcodes look like NHMD- plus six digits."""
    first = (make_guid(random.Random(5), TAKEN), make_barcode(random.Random(5)))
    assert first == (make_guid(random.Random(5), TAKEN), make_barcode(random.Random(5)))
    assert first[1].startswith("NHMD-")
    assert len(first[1]) == 11
    assert first[1][5:].isdigit()


def test_metadata_has_every_v2_1_0_key_with_its_real_type() -> None:
    """metadata_v2_1_0 returns exactly the v2_1_0 keys, each with the type found in real N-Drive files."""
    metadata = metadata_v2_1_0(guid="7e8-8-08-0c-1b-15-2-003-04-000-01e240", spec=SpecimenSpec(), taken=TAKEN)
    assert set(metadata) == set(V2_1_0_TYPES)
    for key, expected in V2_1_0_TYPES.items():
        assert isinstance(metadata[key], expected), key
    assert metadata["payload_type"] == ["image"]
    assert metadata["tags"] == {"metadataTemplate": "v2_1_0"}
    assert metadata["barcode"] == []
    assert metadata["status"] == ""
    assert metadata["parent_guid"] == ""
    assert metadata["file_format"] == "tif"
    assert metadata["date_asset_taken"] == "2024-08-08T12:27:21+02:00"


def test_naive_capture_time_gets_the_demo_offset() -> None:
    """A naive capture time is written with DEMO_UTC_OFFSET so date_asset_taken always carries an offset."""
    metadata = metadata_v2_1_0(guid="g", spec=SpecimenSpec(), taken=TAKEN.replace(tzinfo=None))
    taken = datetime.fromisoformat(str(metadata["date_asset_taken"]))
    assert taken.utcoffset() == DEMO_UTC_OFFSET.utcoffset(None)


def test_specimen_json_matches_its_file_stem_and_spec(specimen: tuple[Path, list[Path], str, str]) -> None:
    """The written JSON has all v2_1_0 keys, asset_guid equal to the file stem and the spec's ARS names."""
    _, files, guid, _ = specimen
    json_path = files[0]
    metadata = _load_json(json_path)
    assert json_path.suffix == ".json"
    assert set(metadata) == set(V2_1_0_TYPES)
    assert metadata["asset_guid"] == json_path.stem == guid
    assert metadata["workstation_name"] == "test-workstation"
    assert metadata["institution"] == "test-institution"
    assert metadata["pipeline_name"] == "test-pipeline"


def test_barcode_on_the_tiff_decodes(specimen: tuple[Path, list[Path], str, str]) -> None:
    """pyzbar reads the sheet's Code128 barcode from the TIFF, full size and from a 1/3 reduced copy."""
    _, files, _, barcode = specimen
    with Image.open(files[1]) as image:
        assert image.size == (1200, 1800)
        full = [symbol.data.decode() for symbol in decode(image)]
        reduced = [symbol.data.decode() for symbol in decode(image.reduce(3))]
    assert full == [barcode]
    assert reduced == [barcode]


def test_dng_opens_with_rawpy_at_the_sheet_size(specimen: tuple[Path, list[Path], str, str]) -> None:
    """rawpy reads the DNG sibling as a 12-bit RGGB mosaic whose visible area is the sheet's size."""
    _, files, _, _ = specimen
    with rawpy.imread(str(files[2])) as raw:
        assert raw.raw_image_visible.shape == (1800, 1200)
        assert raw.color_desc == b"RGBG"
        assert raw.raw_pattern is not None
        assert raw.raw_pattern.tolist() == [[0, 1], [3, 2]]
        assert int(raw.raw_image_visible.max()) <= 4095


def test_plain_asset_is_a_tiff_of_the_requested_size(tmp_path: Path) -> None:
    """write_plain_asset writes a Pillow-readable TIFF of exactly the asked size and a matching JSON."""
    guid = "7e8-8-08-0c-1b-15-2-003-04-000-01e240"
    asset = write_plain_asset(
        tmp_path, guid=guid, spec=SpecimenSpec(), image_bytes=1_000_000, taken=TAKEN, rng=random.Random(3)
    )
    json_path, tif_path = asset.files
    assert tif_path.stat().st_size == 1_000_000
    with Image.open(tif_path) as image:
        image.load()
        assert image.format == "TIFF"
        assert image.mode == "L"
        assert image.width * image.height > 990_000
    assert _load_json(json_path)["asset_guid"] == json_path.stem == tif_path.stem
    assert asset.total_bytes == 1_000_000 + json_path.stat().st_size
    assert asset.taxon in TAXA
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in asset.files)


def _session_bytes(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def test_generate_session_is_deterministic_and_leaves_no_temp_files(tmp_path: Path) -> None:
    """The same seed gives byte-identical sessions of three files per asset, with no temporary files left."""
    first = generate_session(tmp_path / "a", "WORKHERB0001", "session1", 3, spec=SMALL, seed=42, start=TAKEN)
    second = generate_session(tmp_path / "b", "WORKHERB0001", "session1", 3, spec=SMALL, seed=42, start=TAKEN)
    assert [(a.guid, a.barcode, a.taxon, a.total_bytes) for a in first] == [
        (a.guid, a.barcode, a.taxon, a.total_bytes) for a in second
    ]
    folder = tmp_path / "a" / "WORKHERB0001" / "session1"
    expected = {f"{asset.guid}.{ext}" for asset in first for ext in ("json", "tif", "dng")}
    assert {path.name for path in folder.iterdir()} == expected
    assert _session_bytes(folder) == _session_bytes(tmp_path / "b" / "WORKHERB0001" / "session1")
    assert all(asset.total_bytes == sum(p.stat().st_size for p in asset.files) for asset in first)
    assert DasscoGuid.parse(first[0].guid).taken_at() == TAKEN.replace(tzinfo=None)


def test_sessions_with_different_seeds_share_no_guid(tmp_path: Path) -> None:
    """Two sessions from the same start with different seeds have unique GUIDs, within and across them."""
    spec = SpecimenSpec(width=400, height=600, compress_tiff=False)
    first = generate_session(tmp_path, "WORKHERB0001", "s1", 12, spec=spec, seed=1)
    second = generate_session(tmp_path, "WORKHERB0001", "s2", 12, spec=spec, seed=2)
    guids = [asset.guid for asset in first + second]
    assert len(set(guids)) == len(guids) == 24
    taken = [DasscoGuid.parse(asset.guid).taken_at() for asset in first]
    assert taken == sorted(set(taken))


def test_developed_dng_has_the_sheets_colours(specimen: tuple[Path, list[Path], str, str]) -> None:
    """Demosaicing the DNG with camera white balance gives back the TIFF's colours (PSNR above 28 dB)."""
    _, files, _, _ = specimen
    with Image.open(files[1]) as image:
        converted = np.asarray(image.convert("RGB"), dtype=np.float64)
    with rawpy.imread(str(files[2])) as raw:
        developed = raw.postprocess(use_camera_wb=True, no_auto_bright=True, output_bps=8).astype(np.float64)
    mse = float(np.mean((developed - converted) ** 2))
    assert 10 * np.log10(255**2 / mse) > 28


def test_a_session_can_end_with_a_mos_label_and_its_specimens(tmp_path: Path) -> None:
    """With mos_specimens=2 the last three assets are a MOS label on its own and two specimen sheets, all
    showing one disposable code; the assets before are exactly those of a session without."""
    spec = SpecimenSpec(width=1200, height=1800)
    plain = generate_session(tmp_path / "a", "ws", "s", 5, spec=spec, seed=9, start=TAKEN)
    mos = generate_session(tmp_path / "b", "ws", "s", 5, spec=spec, seed=9, start=TAKEN, mos_specimens=2)
    assert [(a.guid, a.barcode) for a in mos[:2]] == [(a.guid, a.barcode) for a in plain[:2]]
    label, *specimens = mos[2:]
    codes = {a.disposable for a in mos[2:]}
    assert len(codes) == 1
    [code] = codes
    assert code.startswith("MOS-")
    assert label.barcode == ""
    assert label.expected_codes == [code]
    assert all(s.barcode.startswith("NHMD-") and s.expected_codes == [s.barcode] for s in specimens)
    label_read = read_barcodes_file(label.files[1], institution="test-institution")
    assert (label_read.asset_subject, label_read.barcodes, label_read.label) == ("label", [code], True)
    assert (label_read.MOS, label_read.disposable) == (True, code)
    for made in specimens:
        read = read_barcodes_file(made.files[1], institution="test-institution")
        assert (read.asset_subject, read.barcodes, read.label) == ("specimen", [made.barcode], False)
        assert (read.MOS, read.disposable) == (True, code)
    with pytest.raises(ValueError, match="needs 4 assets"):
        generate_session(tmp_path / "c", "ws", "s", 3, spec=spec, seed=9, mos_specimens=3)
