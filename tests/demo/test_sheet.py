"""The synthetic herbarium sheet: deterministic, with a decodable barcode at any module width."""

from __future__ import annotations

import random

import numpy as np
import pytest
from pyzbar.pyzbar import decode

from integration.demo._sheet import code128_modules, render_sheet


def test_same_rng_state_draws_the_same_sheet() -> None:
    """render_sheet is a pure function of its arguments and the rng state."""
    kwargs = {"barcode": "NHMD-000123", "taxon": "Primula veris L.", "institution": "NHMD"}
    first = render_sheet(**kwargs, width=600, height=900, rng=random.Random(9))
    second = render_sheet(**kwargs, width=600, height=900, rng=random.Random(9))
    other = render_sheet(**kwargs, width=600, height=900, rng=random.Random(10))
    assert first.mode == "RGB"
    assert first.size == (600, 900)
    assert np.array_equal(np.asarray(first), np.asarray(second))
    assert not np.array_equal(np.asarray(first), np.asarray(other))


@pytest.mark.parametrize(("width", "height"), [(400, 600), (1200, 1800), (2400, 3600)])
def test_barcode_decodes_at_every_sheet_size(width: int, height: int) -> None:
    """The barcode, rasterised at an integer module width, decodes on small and large sheets alike."""
    labels = {"barcode": "NHMD-654321", "taxon": "Galium verum L.", "institution": "NHMD"}
    sheet = render_sheet(**labels, width=width, height=height, rng=random.Random(1))
    assert [symbol.data for symbol in decode(sheet)] == [b"NHMD-654321"]


def test_code128_modules_start_and_stop_with_bars() -> None:
    """The module array starts with a bar (start code) and ends with the stop pattern's final bars."""
    modules = code128_modules("NHMD-000001")
    assert modules.dtype == np.bool_
    assert modules[0]
    assert modules[-2:].all()


def test_too_small_sheet_is_refused() -> None:
    """A sheet too small to hold barcode and label raises ValueError instead of drawing garbage."""
    with pytest.raises(ValueError, match="at least 400x400"):
        render_sheet(barcode="NHMD-1", taxon="x", institution="y", width=200, height=900, rng=random.Random())
