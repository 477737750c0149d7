"""Cropping and derivatives: the crop matches the sheet's content, files carry their GUIDs, resolution,
metadata, size and CRC-32, a source is never upsampled, and a too-small crop is refused with its reason."""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest
from PIL import Image

from imaging_support import iou, loaded, sheet
from integration.errors import ConfigError, InvalidGuid, NodeResourceError
from integration.hpc_client.modules._crop import find_crop
from integration.hpc_client.modules.derivatives import DerivativeSettings, make_derivatives, make_derivatives_file

GUID = "7e8-8-08-0c-1b-15-2-003-04-000-01e240"
PARENT = {"asset_guid": GUID, "institution": "NHMD", "barcode": ["NHMD-042137"], "parent_guid": "",
          "payload_type": ["image"], "file_format": "tif", "tags": {"metadataTemplate": "v2_1_0"}}  # fmt: skip


@pytest.mark.parametrize(
    ("width", "height", "seed"), [(1000, 1500, 1), (1500, 2250, 2), (3000, 4500, 3), (2400, 1600, 4)]
)
def test_crop_matches_the_content_box_of_generated_sheets(width: int, height: int, seed: int) -> None:
    image, truth = sheet(width=width, height=height, seed=seed)
    box = find_crop(image)
    assert box is not None
    assert iou(box.as_tuple(), truth) >= 0.9


def test_derivatives_have_guids_resolution_metadata_and_crc(tmp_path: Path) -> None:
    image, _ = sheet(width=3000, height=4500)
    result = make_derivatives(loaded(image), guid=GUID, out_dir=tmp_path, metadata=PARENT)
    tiff, jpeg = result.derivatives
    assert (tiff.guid, jpeg.guid) == (
        "7e8-8-08-0c-1b-15-2-003-04-001-01e240-00000",
        "7e8-8-08-0c-1b-15-2-003-04-002-01e240-00000",
    )
    assert result.ppi_source == "configured"
    assert result.source_ppi == 600
    assert result.crop.applied
    assert result.crop.share is not None
    assert result.crop.share > 0.5
    for made, ppi, pil_format in ((tiff, 400, "TIFF"), (jpeg, 72, "JPEG")):
        path = Path(made.path)
        data = path.read_bytes()
        assert made.size_bytes == len(data)
        assert made.crc32 == zlib.crc32(data)
        with Image.open(path) as written:
            assert written.format == pil_format
            assert round(float(written.info["dpi"][0])) == ppi
            assert written.size == (made.width, made.height)
        assert made.metadata["asset_guid"] == made.guid
        assert made.metadata["parent_guid"] == GUID
        assert made.metadata["barcode"] == ["NHMD-042137"]
        assert made.metadata["institution"] == "NHMD"
    crop_w = result.crop.box[2] - result.crop.box[0]  # type: ignore[index]
    assert tiff.width == round(crop_w * 400 / 600)
    assert tiff.metadata["file_format"] == "tif"
    assert jpeg.metadata["file_format"] == "jpeg"
    assert tiff.metadata["payload_type"] == ["image"]
    assert jpeg.metadata["payload_type"] == ["thumbnail"]
    assert PARENT["asset_guid"] == GUID
    assert PARENT["parent_guid"] == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(Path(d.path).name for d in result.derivatives)


def test_a_source_below_400_ppi_is_never_upsampled(tmp_path: Path) -> None:
    image, _ = sheet(width=1500, height=2250)
    source = tmp_path / "source.tif"
    image.save(source, dpi=(300, 300))
    result = make_derivatives_file(source, guid=GUID, out_dir=tmp_path / "out")
    tiff = result.derivatives[0]
    assert result.ppi_source == "file"
    assert result.source_ppi == 300
    assert tiff.ppi == 300
    assert "never upsampled" in tiff.note
    crop_w = result.crop.box[2] - result.crop.box[0]  # type: ignore[index]
    assert tiff.width == crop_w


def test_a_crop_keeping_too_little_is_refused_and_the_uncropped_image_used(tmp_path: Path) -> None:
    image = Image.new("RGB", (2000, 3000), (238, 232, 212))
    image.paste((40, 90, 40), (900, 1400, 1100, 1600))  # a small specimen: a crop would keep ~1 %
    result = make_derivatives(loaded(image), guid=GUID, out_dir=tmp_path)
    assert not result.crop.applied
    assert "refused" in result.crop.reason
    assert result.crop.share is not None
    assert result.crop.share < 0.2
    assert result.derivatives[0].width == round(2000 * 400 / 600)


def test_an_empty_sheet_is_not_cropped(tmp_path: Path) -> None:
    result = make_derivatives(loaded(Image.new("RGB", (900, 1200), (238, 232, 212))), guid=GUID, out_dir=tmp_path)
    assert not result.crop.applied
    assert result.crop.box is None
    assert len(result.derivatives) == 2


def test_an_invalid_or_derivative_guid_is_refused_before_any_file_is_written(tmp_path: Path) -> None:
    image, _ = sheet(width=1000, height=1500)
    with pytest.raises(InvalidGuid):
        make_derivatives(loaded(image), guid="not-a-guid", out_dir=tmp_path / "a")
    with pytest.raises(InvalidGuid, match="already a derivative"):
        make_derivatives(loaded(image), guid="7e8-8-08-0c-1b-15-2-003-04-001-01e240-00000", out_dir=tmp_path / "b")
    assert not (tmp_path / "a").exists()
    assert not (tmp_path / "b").exists()


def test_a_failed_write_leaves_no_partial_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    image, _ = sheet(width=1000, height=1500)

    def broken_save(self: Image.Image, fp: object, *args: object, **kwargs: object) -> None:
        Path(str(fp)).write_bytes(b"half a tiff")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(NodeResourceError, match="No space"):  # the node's disk, not the asset: retried
        make_derivatives(loaded(image), guid=GUID, out_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_an_output_path_that_cannot_be_a_directory_is_a_config_error(tmp_path: Path) -> None:
    image, _ = sheet(width=1000, height=1500)
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="cannot write"):
        make_derivatives(loaded(image), guid=GUID, out_dir=blocker / "out")


def test_a_wrong_guid_is_refused_before_the_file_is_decoded(tmp_path: Path) -> None:
    with pytest.raises(InvalidGuid):  # the file does not even exist: the GUID is checked first
        make_derivatives_file(tmp_path / "absent.tif", guid="nope", out_dir=tmp_path)


def test_cropping_can_be_switched_off(tmp_path: Path) -> None:
    image, _ = sheet(width=1000, height=1500)
    result = make_derivatives(loaded(image), guid=GUID, out_dir=tmp_path, settings=DerivativeSettings(crop=False))
    assert not result.crop.applied
    assert result.derivatives[0].width == round(1000 * 400 / 600)


@pytest.mark.parametrize("size", [(1, 1), (3, 3000), (3000, 3), (40, 40)])
@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_degenerate_images_go_through_every_module(tmp_path: Path, size: tuple[int, int], mode: str) -> None:
    """Tiny, thin, single-colour images: honest empty results and derivatives of at least 1x1 pixel."""
    from integration.hpc_client.modules.barcode import read_barcodes
    from integration.hpc_client.modules.ocr import read_text

    image = Image.new(mode, size, 0 if size == (40, 40) else 200)
    barcodes = read_barcodes(loaded(image), institution="NHMD")
    assert barcodes.not_found
    assert barcodes.barcodes == []
    assert read_text(loaded(image)).tags_ocr == ""
    result = make_derivatives(loaded(image), guid=GUID, out_dir=tmp_path)
    assert all(made.width >= 1 and made.height >= 1 for made in result.derivatives)
    assert all(Path(made.path).stat().st_size == made.size_bytes for made in result.derivatives)


@pytest.mark.parametrize("backdrop", [(240, 240, 240), (255, 255, 255), (200, 200, 200), (20, 20, 20)])
def test_crop_ignores_the_backdrop_around_the_sheet(backdrop: tuple[int, int, int]) -> None:
    """A sheet photographed on a light, white or dark backdrop, with a wide border of it."""
    image, truth = sheet(width=1500, height=2250)
    inner = image.crop((38, 38, 1500 - 38, 2250 - 38))  # without the generator's own dark border
    canvas = Image.new("RGB", (1900, 2700), backdrop)
    canvas.paste(inner, (200, 225))
    expected = (truth[0] + 162, truth[1] + 187, truth[2] + 162, truth[3] + 187)
    box = find_crop(canvas)
    assert box is not None
    assert iou(box.as_tuple(), expected) >= 0.9
