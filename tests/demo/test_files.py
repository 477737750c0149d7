"""Demo file writers: whole-or-nothing writes, the DNG encoder and the plain benchmark TIFF."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import rawpy
from PIL import Image

from integration.demo._files import write_atomically, write_dng, write_plain_tiff


def test_failed_write_leaves_neither_target_nor_temp_file(tmp_path: Path) -> None:
    """When the writer raises, the error propagates and the folder stays empty."""

    def broken(temp: Path) -> None:
        temp.write_bytes(b"half a file")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomically(tmp_path / "asset.tif", broken)
    assert list(tmp_path.iterdir()) == []


def test_dng_mosaic_follows_rggb_and_trims_odd_sizes(tmp_path: Path) -> None:
    """A pure red image gives bright R sites and dark G/B sites; an odd size loses its last row/column."""
    write_dng(Image.new("RGB", (101, 61), (255, 0, 0)), tmp_path / "red.dng")
    with rawpy.imread(str(tmp_path / "red.dng")) as raw:
        mosaic = raw.raw_image_visible.copy()
    assert mosaic.shape == (60, 100)
    assert np.all(mosaic[0::2, 0::2] == 4095)
    assert np.all(mosaic[0::2, 1::2] == 0)
    assert np.all(mosaic[1::2, 1::2] == 0)


@pytest.mark.parametrize("size", [200, 65_536, 1_048_576])
def test_plain_tiff_has_exactly_the_asked_size(tmp_path: Path, size: int) -> None:
    """write_plain_tiff gives a readable 8-bit grey TIFF of exactly ``size`` bytes."""
    path = tmp_path / "plain.tif"
    assert write_plain_tiff(path, size, random.Random(size)) == size
    assert path.stat().st_size == size
    with Image.open(path) as image:
        image.load()
        assert (image.format, image.mode) == ("TIFF", "L")
        assert image.info["dpi"] == (300, 300)


def test_plain_tiff_below_its_header_size_is_refused(tmp_path: Path) -> None:
    """A size too small for header plus one pixel raises ValueError and writes nothing."""
    with pytest.raises(ValueError, match="at least"):
        write_plain_tiff(tmp_path / "tiny.tif", 100, random.Random())
    assert list(tmp_path.iterdir()) == []
