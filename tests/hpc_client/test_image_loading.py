"""Reading image files: every bad input is a typed error or a usable image, never a crash of the caller."""

from __future__ import annotations

import errno
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imaging_support import sheet
from integration.demo._files import write_dng
from integration.errors import DataError, ImageUnreadable, NodeResourceError
from integration.hpc_client.modules._image import load_image, resolution_of


def _png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG whose header claims ``width`` x ``height`` but carries no pixel data (nothing is allocated)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    data = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    end = b"IEND"
    path.write_bytes(data + struct.pack(">I", 0) + end + struct.pack(">I", zlib.crc32(end)))


def test_a_truncated_tiff_is_unreadable_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "cut.tif"
    Image.new("RGB", (400, 300), (200, 10, 10)).save(path, format="TIFF")
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(ImageUnreadable, match=r"cut\.tif"):
        load_image(path)


def test_an_image_without_pixels_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    _png_header_only(path, 0, 0)
    with pytest.raises(ImageUnreadable):
        load_image(path)


def test_300_megapixels_are_refused_from_the_header_before_decoding(tmp_path: Path) -> None:
    path = tmp_path / "huge.png"
    _png_header_only(path, 20_000, 15_000)
    with pytest.raises(ImageUnreadable, match=r"300 MP .* more than the 250 MP allowed"):
        load_image(path)
    with pytest.raises(ImageUnreadable, match=r"no pixels|cannot be decoded"):  # allowed, then the data is missing
        load_image(path, max_megapixels=400)


def test_a_four_page_tiff_uses_the_first_page_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "pages.tif"
    pages = [Image.new("RGB", (64, 48), colour) for colour in ((255, 0, 0), (0, 255, 0), (0, 0, 255), (9, 9, 9))]
    pages[0].save(path, save_all=True, append_images=pages[1:])
    image = load_image(path)
    assert image.pages == 4
    assert image.image.getpixel((10, 10)) == (255, 0, 0)
    assert any("4 pages" in note for note in image.notes)


def test_a_cmyk_jpeg_becomes_rgb(tmp_path: Path) -> None:
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (80, 60), (0, 255, 255, 0)).save(path)
    image = load_image(path)
    assert image.image.mode == "RGB"
    red, green, blue = image.image.getpixel((40, 30))  # type: ignore[misc]
    assert red > 200
    assert green < 60
    assert blue < 60


def test_a_palette_png_with_transparency_is_flattened_onto_white(tmp_path: Path) -> None:
    path = tmp_path / "palette.png"
    image = Image.new("P", (32, 32), 1)
    image.putpalette([0, 0, 0, 10, 200, 10] + [0] * 762)
    image.info["transparency"] = 0
    image.paste(0, (0, 0, 16, 32))
    image.save(path, transparency=0)
    result = load_image(path).image
    assert result.mode == "RGB"
    assert result.getpixel((4, 4)) == (255, 255, 255)
    assert result.getpixel((20, 4)) == (10, 200, 10)


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    path = tmp_path / "sideways.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW to view
    Image.new("RGB", (300, 200), "white").save(path, exif=exif)
    assert load_image(path).size == (200, 300)


def test_16_bit_rgb_tiff_is_read_through_tifffile(tmp_path: Path) -> None:
    import tifffile

    path = tmp_path / "deep.tif"
    pixels = np.zeros((40, 50, 3), dtype=np.uint16)
    pixels[..., 0] = 65535
    pixels[..., 2] = 32768
    tifffile.imwrite(path, pixels, photometric="rgb")
    image = load_image(path).image
    assert image.mode == "RGB"
    assert image.getpixel((5, 5)) == (255, 0, 128)  # the high byte of each sample


def test_16_bit_grey_tiff_is_scaled_to_8_bits(tmp_path: Path) -> None:
    import tifffile

    path = tmp_path / "grey16.tif"
    tifffile.imwrite(path, np.full((30, 30), 65535, dtype=np.uint16))
    image = load_image(path).image
    assert image.mode == "L"
    assert image.getpixel((3, 3)) == 255


def test_a_dng_raw_is_demosaiced(tmp_path: Path) -> None:
    image, _ = sheet(width=600, height=900)
    path = tmp_path / "sheet.dng"
    write_dng(image, path)
    result = load_image(path)
    assert result.size == (600, 900)
    assert result.image.mode == "RGB"
    assert np.asarray(result.image).std() > 10  # a picture, not a flat field


@pytest.mark.parametrize("suffix", [".dng", ".cr3", ".raf"])
def test_a_corrupt_raw_is_unreadable(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"broken{suffix}"
    path.write_bytes(b"II*\x00" + bytes(range(256)) * 20)
    with pytest.raises(ImageUnreadable):
        load_image(path)


def test_a_text_file_and_a_missing_file_are_unreadable(tmp_path: Path) -> None:
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    with pytest.raises(ImageUnreadable):
        load_image(text)
    with pytest.raises(ImageUnreadable, match="does not exist"):
        load_image(tmp_path / "absent.tif")
    assert issubclass(ImageUnreadable, DataError)  # the daemon quarantines it with its reason


def test_resolution_tag_is_used_only_when_plausible(tmp_path: Path) -> None:
    path = tmp_path / "tagged.tif"
    Image.new("RGB", (4000, 6000)).save(path, dpi=(400, 400))
    assert resolution_of(load_image(path), configured_ppi=600) == (400.0, "file")
    camera = tmp_path / "camera.jpg"
    Image.new("RGB", (6000, 9000)).save(camera, dpi=(72, 72))  # 125 inches tall at 72 ppi: a camera default
    assert resolution_of(load_image(camera), configured_ppi=600) == (600, "configured")
    untagged = tmp_path / "plain.png"
    Image.new("RGB", (100, 100)).save(untagged)
    assert resolution_of(load_image(untagged), configured_ppi=550) == (550, "configured")


@pytest.mark.parametrize("image_format", ["PNG", "JPEG", "TIFF"])
def test_corrupted_bytes_give_an_image_or_a_typed_error_never_anything_else(tmp_path: Path, image_format: str) -> None:
    """Flip, cut and splice bytes of a small sheet 60 times per format: load_image and the barcode reader must
    either work or raise ImageUnreadable (which the caller knows how to report)."""
    import random

    from integration.hpc_client.modules.barcode import read_barcodes

    image, _ = sheet(width=500, height=750)
    path = tmp_path / f"sheet.{image_format.lower()}"
    image.save(path, format=image_format)
    original = path.read_bytes()
    rng = random.Random(image_format)
    outcomes = {"image": 0, "unreadable": 0}  # any other exception fails the test
    for _ in range(60):
        data = bytearray(original)
        for _ in range(rng.randint(1, 12)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        if rng.random() < 0.3:
            data = data[: rng.randrange(8, len(data))]
        path.write_bytes(bytes(data))
        try:
            loaded = load_image(path)
        except ImageUnreadable:
            outcomes["unreadable"] += 1
            continue
        outcomes["image"] += 1
        read_barcodes(loaded, institution="NHMD")  # must not raise on whatever pixels came out
    assert outcomes["unreadable"] > 0  # the corruption was real


def test_a_16_bit_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    path = tmp_path / "deep.png"
    ramp = (np.arange(256, dtype=np.uint16).reshape(16, 16) * 256).astype(np.uint16)  # 0 .. 65280
    Image.fromarray(ramp).save(path)
    grey = np.asarray(load_image(path).image)
    assert grey.min() == 0
    assert grey.max() == 255
    assert len(np.unique(grey)) == 256  # the ramp survives; clipping would make almost all of it 255


def test_12_bit_data_in_16_bit_tiff_keeps_its_range(tmp_path: Path) -> None:
    import tifffile

    path = tmp_path / "twelve.tif"
    tifffile.imwrite(path, np.full((10, 10), 4095, dtype=np.uint16))
    assert load_image(path).image.getpixel((1, 1)) == 255


def test_a_16_bit_tiff_honours_its_orientation_tag(tmp_path: Path) -> None:
    import tifffile

    path = tmp_path / "sideways16.tif"
    pixels = np.zeros((100, 300, 3), dtype=np.uint16)
    pixels[:, :10] = 65535  # a white stripe on the left edge of the stored image
    tifffile.imwrite(path, pixels, photometric="rgb", extratags=[(274, "H", 1, 6, True)])  # Orientation=6
    image = load_image(path).image
    assert image.size == (100, 300)  # turned upright, like an 8-bit TIFF with the same tag
    assert image.getpixel((50, 2)) == (255, 255, 255)  # the stripe is now at the top


@pytest.mark.parametrize(
    ("raised", "expected"),
    [
        (MemoryError(), NodeResourceError),
        (OSError(errno.EIO, "Input/output error"), NodeResourceError),
        (OSError(errno.ESTALE, "Stale file handle"), NodeResourceError),
        (OSError("image file is truncated"), ImageUnreadable),
        (SyntaxError("broken PNG file"), ImageUnreadable),
    ],
)
def test_a_failing_node_is_not_blamed_on_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, raised: BaseException, expected: type[Exception]
) -> None:
    path = tmp_path / "fine.png"
    Image.new("RGB", (10, 10)).save(path)

    def failing_open(*args: object, **kwargs: object) -> Image.Image:
        raise raised

    monkeypatch.setattr(Image, "open", failing_open)
    with pytest.raises(expected):
        load_image(path)
