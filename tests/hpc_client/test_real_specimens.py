"""The image modules on ../shared/data/real-specimens against the golden results in real_specimens_golden.toml.

Tolerances: barcodes exact (every reachable code read, the right specimen codes chosen, no value that is not in
the ground truth or Reed-Solomon checked as ``also_valid``, the unreachable ones reported "not found"); OCR key-word
recall >= 0.90 per typed target label here (docs/benchmarks.md reports the figures against the 0.95 target).
The set is required: a missing set fails these tests with the path it looked at (imaging_support.specimens_dir).
"""

from __future__ import annotations

import csv

import pytest

from imaging_support import golden, keyword_recall, specimen_file, specimens_dir
from integration.hpc_client.modules._image import load_image
from integration.hpc_client.modules.barcode import read_barcodes
from integration.hpc_client.modules.ocr import read_text

GOLDEN = golden()
TYPED_TARGETS = ["fm_C0000578F_holotype", "brit_vdb_no-barcode", "elie_CASENT0179609_typed2", "nhmd_spidercards_lsq523"]


def test_the_golden_file_covers_the_manifest() -> None:
    with (specimens_dir() / "MANIFEST.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert {row["file"].rsplit(".", 1)[0] for row in rows} == set(GOLDEN)
    for row in rows:
        entry = GOLDEN[row["file"].rsplit(".", 1)[0]]
        truth = {code for code in row["ground_truth_barcodes"].split(";") if code}
        assert truth == set(entry.get("barcodes", [])) | set(entry.get("unreachable", [])), row["file"]


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_barcodes_on_real_specimens(name: str) -> None:
    entry = GOLDEN[name]
    result = read_barcodes(load_image(specimen_file(name)), institution=entry["institution"])
    values = {code.value for code in result.codes}
    allowed = set(entry.get("barcodes", [])) | set(entry.get("also_valid", []))
    assert set(entry.get("barcodes", [])) <= values, f"missed: {set(entry.get('barcodes', [])) - values}"
    assert values <= allowed, f"wrong values: {values - allowed}"
    assert not (values & set(entry.get("unreachable", [])))
    assert result.conflicts == []
    if "specimen" in entry:
        assert sorted(result.barcodes) == sorted(entry["specimen"])
        assert result.asset_subject == "specimen"
        assert (len(entry["specimen"]) > 1) == result.MSO
    if not entry.get("barcodes") and not entry.get("also_valid"):
        assert result.not_found
        assert result.barcodes == []


@pytest.mark.parametrize("name", TYPED_TARGETS)
def test_ocr_reads_the_typed_labels(name: str) -> None:
    result = read_text(load_image(specimen_file(name)), institution=GOLDEN[name]["institution"])
    found, total = keyword_recall(GOLDEN[name], result.tags_ocr)
    assert found / total >= 0.90, f"{found}/{total} key words in {result.tags_ocr!r}"


def test_ocr_flags_handwriting_instead_of_trusting_it() -> None:
    result = read_text(load_image(specimen_file("bern_label_BERN-0065171")), institution="BERN")
    found, total = keyword_recall(GOLDEN["bern_label_BERN-0065171"], result.tags_ocr)
    assert found / total < 0.5  # tesseract cannot read this hand ...
    assert any(region.low_confidence for region in result.regions)  # ... and says so
