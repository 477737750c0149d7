"""Shared by the image-module tests: generated sheets, loaded images, and where the real specimens are."""

from __future__ import annotations

import io
import os
import random
import re
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageFilter

from integration.demo import render_sheet
from integration.demo._sheet import code128_modules, content_box
from integration.hpc_client.modules._image import LoadedImage

REPO = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).resolve().parent / "hpc_client" / "real_specimens_golden.toml"


def specimens_dir() -> Path:
    """The real-specimen set: $INTEGRATION_SPECIMENS, else ../shared/data/real-specimens from the repository root.

    A missing set is a test failure with a clear message, never a skip (CI has shared/ beside its clone).
    """
    configured = os.environ.get("INTEGRATION_SPECIMENS")
    path = Path(configured) if configured else REPO.parent / "shared" / "data" / "real-specimens"
    assert (path / "MANIFEST.csv").is_file(), (
        f"the real-specimen set is missing at {path}: these tests need ../shared/data/real-specimens beside the "
        "repository (as in CI) or INTEGRATION_SPECIMENS=<dir with MANIFEST.csv>"
    )
    return path


def golden() -> dict[str, dict[str, Any]]:
    with GOLDEN.open("rb") as handle:
        return tomllib.load(handle)


def specimen_file(name: str) -> Path:
    matches = sorted(specimens_dir().glob(name + ".*"))
    assert matches, f"{name}.* is not in {specimens_dir()}"
    return matches[0]


def sheet(
    *, width: int = 1500, height: int = 2250, barcode: str = "NHMD-042137", seed: int = 1
) -> tuple[Image.Image, tuple[int, int, int, int]]:
    """A generated sheet and the exact box of its content (plant, chart, sticker, label)."""
    rng = random.Random(seed)
    state = rng.getstate()
    image = render_sheet(barcode=barcode, taxon="Carex nigra", institution="NHMD", width=width, height=height, rng=rng)
    return image, content_box(image, width=width, height=height, rng_state=state)


def loaded(image: Image.Image, *, dpi: float | None = None) -> LoadedImage:
    return LoadedImage(image=image, path=Path("generated.png"), source_format="PNG", dpi=dpi)


def add_code128(
    image: Image.Image, text: str, *, at: tuple[int, int], module_px: int = 3, bar_height: int | None = None
) -> Image.Image:
    """``image`` with a second Code 128 sticker pasted at ``at`` (bars ``bar_height`` high, 30 modules if None)."""
    bars = np.pad(code128_modules(text), 10, constant_values=False)
    row = np.where(np.repeat(bars, module_px), 0, 255).astype(np.uint8)
    strip = Image.fromarray(np.broadcast_to(row, (bar_height or module_px * 30, row.size)).copy()).convert("RGB")
    copy = image.copy()
    copy.paste(strip, at)
    return copy


def degraded(image: Image.Image, *, blur: float = 1.2, jpeg_quality: int = 60) -> Image.Image:
    """Blurred and through a low-quality JPEG round trip."""
    buffer = io.BytesIO()
    image.filter(ImageFilter.GaussianBlur(blur)).save(buffer, format="JPEG", quality=jpeg_quality)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    inter_w = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    inter_h = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = inter_w * inter_h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


def _tokens(text: str) -> set[str]:
    tokens: set[str] = set()
    for word in text.split():
        word = word.strip(".,;:()[]\"'!?#|").casefold()
        tokens.add(word)
        tokens.update(part for part in re.split(r"[.,;:/()]", word) if part)
    return tokens


def keyword_recall(entry: dict[str, Any], text: str) -> tuple[int, int]:
    """Key words of a golden ``entry`` found in ``text`` (case-insensitive, edge punctuation stripped; a token
    is also split at . , ; : / ( ) so "R.Kral" holds "kral"), and how many key words there are."""
    keywords = entry["keywords"]
    tokens = _tokens(text)
    return sum(word.casefold() in tokens for word in keywords), len(keywords)
