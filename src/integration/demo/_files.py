"""Write demo files the way a workstation should: whole or not at all, plus the DNG and plain-TIFF encoders.

Every file is written to a hidden ``.<name>.part`` in the target folder and then renamed, so an N-Drive
watcher that lists the folder sees either nothing or the complete file.
"""

from __future__ import annotations

import os
import random
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
from pidng.core import RAW2DNG
from pidng.defs import CalibrationIlluminant, CFAPattern, PhotometricInterpretation
from pidng.dng import DNGTags, Tag
from PIL import Image

__all__ = ["write_atomically", "write_bytes_atomically", "write_dng", "write_plain_tiff"]

_WHITE_LEVEL = 4095  # 12-bit raw
# The "camera" records linear sRGB, so its XYZ->camera matrix is the XYZ(D65)->linear-sRGB matrix; raw
# developers then turn the mosaic back into the sheet's own colours.
_XYZ_TO_LINEAR_SRGB = (
    (3.2406, -1.5372, -0.4986),
    (-0.9689, 1.8758, 0.0415),
    (0.0557, -0.2040, 1.0570),
)


def write_atomically(path: Path, write: Callable[[Path], object]) -> int:
    """Call ``write(temp_path)`` for a hidden temporary sibling of ``path``, then rename it to ``path``.

    Returns the size of the finished file. On any error the temporary file is removed and the error
    re-raised; ``path`` is then untouched.
    """
    temp = path.with_name(f".{path.name}.part")
    try:
        write(temp)
        size = temp.stat().st_size
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return size


def write_bytes_atomically(path: Path, data: bytes | bytearray | memoryview) -> int:
    """Write ``data`` to ``path`` through a temporary sibling and a rename; returns the byte count."""
    return write_atomically(path, lambda temp: temp.write_bytes(data))


def _srgb_to_linear_12bit() -> np.ndarray:
    """Lookup table from an 8-bit sRGB value to a linear 12-bit sensor value."""
    v = np.arange(256, dtype=np.float64) / 255.0
    linear = np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)
    return np.round(linear * _WHITE_LEVEL).astype(np.uint16)


_LINEARISE = _srgb_to_linear_12bit()


def _bayer_rggb(image: Image.Image) -> np.ndarray:
    """The RGGB mosaic a sensor would have recorded for ``image``, as linear 12-bit values in uint16."""
    rgb = np.asarray(image.convert("RGB"))
    height, width = rgb.shape[0] & ~1, rgb.shape[1] & ~1
    mosaic = np.empty((height, width), dtype=np.uint8)
    mosaic[0::2, 0::2] = rgb[0:height:2, 0:width:2, 0]
    mosaic[0::2, 1::2] = rgb[0:height:2, 1:width:2, 1]
    mosaic[1::2, 0::2] = rgb[1:height:2, 0:width:2, 1]
    mosaic[1::2, 1::2] = rgb[1:height:2, 1:width:2, 2]
    result: np.ndarray = _LINEARISE.take(mosaic)
    return result


def _dng_tags(width: int, height: int) -> DNGTags:
    """The minimal tag set rawpy/LibRaw needs to read an uncompressed 12-bit RGGB DNG."""
    tags = DNGTags()
    tags.set(Tag.ImageWidth, width)
    tags.set(Tag.ImageLength, height)
    tags.set(Tag.TileWidth, width)
    tags.set(Tag.TileLength, height)
    tags.set(Tag.Orientation, 1)
    tags.set(Tag.PhotometricInterpretation, PhotometricInterpretation.Color_Filter_Array)
    tags.set(Tag.SamplesPerPixel, 1)
    tags.set(Tag.BitsPerSample, 12)
    tags.set(Tag.CFARepeatPatternDim, [2, 2])
    tags.set(Tag.CFAPattern, CFAPattern.RGGB)
    tags.set(Tag.BlackLevel, 0)
    tags.set(Tag.WhiteLevel, _WHITE_LEVEL)
    tags.set(Tag.ColorMatrix1, [[round(v * 10_000), 10_000] for row in _XYZ_TO_LINEAR_SRGB for v in row])
    tags.set(Tag.CalibrationIlluminant1, CalibrationIlluminant.D65)
    tags.set(Tag.AsShotNeutral, [[1, 1], [1, 1], [1, 1]])
    tags.set(Tag.BaselineExposure, [[0, 1]])
    tags.set(Tag.Make, "DaSSCo")
    tags.set(Tag.Model, "Demo Sheet Camera")
    tags.set(Tag.UniqueCameraModel, "DaSSCo Demo Sheet Camera")
    return tags


def write_dng(image: Image.Image, path: Path) -> None:
    """Write ``image`` as the uncompressed 12-bit RGGB DNG a camera would have produced for it.

    Odd widths/heights lose their last column/row (a Bayer tile is 2x2). pidng's compressed mode is broken
    on Python >= 3.10 (notes/environment.md §5), so the file is uncompressed: 1.5 bytes per pixel.
    The file is written through a temporary sibling and a rename.
    """
    mosaic = _bayer_rggb(image)
    height, width = mosaic.shape
    converter = RAW2DNG()
    converter.options(_dng_tags(width, height), path=str(path.parent), compress=False)
    data = converter.convert(mosaic)
    write_bytes_atomically(path, data)


_TIFF_ENTRIES = 12
_TIFF_IFD_SIZE = 2 + 12 * _TIFF_ENTRIES + 4
_TIFF_RESOLUTION_OFFSET = 8 + _TIFF_IFD_SIZE
_TIFF_HEADER_SIZE = _TIFF_RESOLUTION_OFFSET + 8  # one RATIONAL shared by X and Y resolution
_TIFF_WIDTH = 1024


def _plain_tiff_header(width: int, height: int) -> bytes:
    """Header, one IFD and the resolution value of an uncompressed 8-bit grey TIFF with one strip."""
    entries = (
        (256, 4, width),  # ImageWidth, LONG
        (257, 4, height),  # ImageLength
        (258, 3, 8),  # BitsPerSample, SHORT
        (259, 3, 1),  # Compression: none
        (262, 3, 1),  # PhotometricInterpretation: BlackIsZero
        (273, 4, _TIFF_HEADER_SIZE),  # StripOffsets
        (277, 3, 1),  # SamplesPerPixel
        (278, 4, height),  # RowsPerStrip
        (279, 4, width * height),  # StripByteCounts
        (282, 5, _TIFF_RESOLUTION_OFFSET),  # XResolution, RATIONAL stored at that offset
        (283, 5, _TIFF_RESOLUTION_OFFSET),  # YResolution, the same 300/1
        (296, 3, 2),  # ResolutionUnit: inch
    )
    header = bytearray(_TIFF_HEADER_SIZE)
    struct.pack_into("<2sHIH", header, 0, b"II", 42, 8, len(entries))
    for index, (tag, kind, value) in enumerate(entries):
        struct.pack_into("<HHII", header, 10 + 12 * index, tag, kind, 1, value)
    # the next-IFD offset after the entries stays 0: there is only one image
    struct.pack_into("<II", header, _TIFF_RESOLUTION_OFFSET, 300, 1)
    return bytes(header)


def write_plain_tiff(path: Path, size: int, rng: random.Random) -> int:
    """Write a valid little-endian 8-bit grey TIFF of exactly ``size`` bytes with pseudo-random pixels.

    The image is 1024 px wide (narrower when ``size`` is small) and as tall as fits; the bytes that do not
    fill a whole row are zero padding after the single strip. The pixels come from numpy's bit generator
    seeded by ``rng`` and go to the file without an intermediate copy, so 1 MB costs about a millisecond.
    Written through a temporary sibling and a rename; returns ``size``.
    """
    pixel_budget = size - _TIFF_HEADER_SIZE
    if pixel_budget < 1:
        raise ValueError(f"a plain TIFF needs at least {_TIFF_HEADER_SIZE + 1} bytes, asked for {size}")
    width = min(_TIFF_WIDTH, pixel_budget)
    height = pixel_budget // width
    pixel_count = width * height
    noise = np.random.Generator(np.random.PCG64(rng.getrandbits(64))).bit_generator.random_raw((pixel_count + 7) // 8)
    pixels = noise.view(np.uint8)[:pixel_count]

    def write(temp: Path) -> None:
        with temp.open("wb") as out:
            out.write(_plain_tiff_header(width, height))
            out.write(pixels.data)
            out.write(bytes(pixel_budget - pixel_count))

    return write_atomically(path, write)
