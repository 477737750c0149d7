"""The barcode reader job: every code on an image, which of them are the specimen's, never a wrong value.

Cascade (docs/hpc-barcode.md): a reduced copy -> the full image -> overlapping tiles upscaled x2 -> the image
skewed by +-5 degrees; it stops after the first pass that finds a code the institution's rules call a specimen
code (any code, without an institution). zxing-cpp reads every pass; pyzbar gives a second opinion on a crop
around every linear code zxing found, and reads the whole reduced copy. Reads are grouped by symbol
(_grouping.py); different values for one symbol are a *conflict*: none is reported as a barcode. EAN/UPC check
digits are verified again; Code 39 mod-43 where the rules say the labels carry it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

import msgspec
import numpy as np
from PIL import Image

from ._barcode_rules import RuleTable, load_rules
from ._decoders import Box, Read, View, pyzbar_reads, zxing_reads
from ._grouping import family, group_by_place, without_itf_fragments
from ._image import DEFAULT_MAX_MEGAPIXELS, LoadedImage, load_image
from ._job import JobInput, node_failures
from ._symbols import CHECKED_BY_DECODER, LINEAR, gtin_check_ok

__all__ = [
    "MODULE_VERSION",
    "BarcodeJob",
    "BarcodeResult",
    "BarcodeSettings",
    "CodeRead",
    "Conflict",
    "read_barcodes",
    "read_barcodes_file",
    "run_barcode",
]

MODULE_VERSION = "1.0.0"
Pass = Literal["reduced", "full", "tiles", "skew"]
_MIN_SIDE = 8
_SELF_CHECKING = CHECKED_BY_DECODER | {"ean13", "ean8"}
Subject = Literal["specimen", "label", "device target", "folder", ""]


class BarcodeSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How hard to look; the defaults meet docs/benchmarks.md's figures."""

    reduced_long_side: int = 2400  # the first pass reads a copy reduced to this long side (if larger)
    tile_grid: int = 3  # tiles per side in the tile pass
    tile_overlap: float = 0.25  # of a tile's size, on each side
    tile_upscale: float = 2.0
    tile_max_megapixels: float = 12.0  # an upscaled tile is kept below this (large scans: less upscaling)
    skew_degrees: tuple[float, ...] = (5.0, -5.0)
    second_opinion: bool = True  # pyzbar re-reads linear codes
    max_megapixels: float = DEFAULT_MAX_MEGAPIXELS


class CodeRead(msgspec.Struct, frozen=True, kw_only=True):
    """One symbol on the image and what it means."""

    value: str  # as decoded
    identifier: str  # as reported (normalised by the institution's rule, e.g. "BR" + EAN-13)
    role: str  # specimen / disposable / device_target / folder / label / other
    symbology: str
    box: tuple[int, int, int, int]  # left, top, right, bottom in the upright image's pixels
    found_by: Pass
    decoders: tuple[str, ...]  # which decoders read this value here
    short_id: str | None = None
    institution: str | None = None


class Conflict(msgspec.Struct, frozen=True, kw_only=True):
    """Two decoders (or passes) read different values for one symbol: none of them is reported."""

    box: tuple[int, int, int, int]
    values: tuple[str, ...]
    decoders: tuple[str, ...]


class BarcodeResult(msgspec.Struct, frozen=True, kw_only=True):
    """The barcode job's result, in the shape of the original's barcode callback plus the details per code."""

    barcodes: list[str]
    asset_subject: Subject
    MSO: bool  # multispecimen: several specimen codes
    MOS: bool  # a disposable (multi-object) label code is on the image
    label: bool  # the image is of such a label only
    disposable: str | None
    not_found: bool  # no code at all could be read (and none disputed)
    needs_review: bool  # some symbol was read with different values: a person must look (see conflicts)
    codes: list[CodeRead]
    conflicts: list[Conflict]
    passes: list[str]  # the passes that ran, in order
    institution: str | None
    image_size: tuple[int, int]
    seconds: float  # decoding time from the image in memory
    module: str = "barcode"
    version: str = MODULE_VERSION
    notes: list[str] = []


class BarcodeJob(JobInput, frozen=True, kw_only=True):
    """The barcode job: the asset's image, read with the rules of its metadata's ``institution``."""

    settings: BarcodeSettings = msgspec.field(default_factory=BarcodeSettings)


def run_barcode(job: BarcodeJob, *, rules: RuleTable | None = None) -> BarcodeResult:
    with node_failures(f"barcode {job.guid}"):
        return read_barcodes_file(job.image_path, institution=job.institution, settings=job.settings, rules=rules)


def read_barcodes_file(
    path: Path,
    *,
    institution: str | None = None,
    settings: BarcodeSettings | None = None,
    rules: RuleTable | None = None,
) -> BarcodeResult:
    """Load ``path`` (see _image.load_image) and read its barcodes."""
    settings = settings or BarcodeSettings()
    loaded = load_image(path, max_megapixels=settings.max_megapixels)
    return read_barcodes(loaded, institution=institution, settings=settings, rules=rules)


def read_barcodes(
    loaded: LoadedImage,
    *,
    institution: str | None = None,
    settings: BarcodeSettings | None = None,
    rules: RuleTable | None = None,
) -> BarcodeResult:
    """Read every code on ``loaded`` and classify it with ``institution``'s rules.

    Without an institution every code's role is "other" (which code is the specimen's is not guessed); its
    ``institution`` then names whose rules it would match, as a hint.
    """
    settings = settings or BarcodeSettings()
    rules = rules or load_rules()
    institution = rules.find(institution).name if institution else None
    started = time.perf_counter()
    notes = list(loaded.notes)
    if institution is None:
        notes.append("no institution given: no code is called the specimen's (give the institution)")
    grey = loaded.grey()
    reads: list[tuple[Read, Pass]] = []
    passes: list[str] = []
    for name, views in _passes(grey, settings):
        passes.append(name)
        pass_reads: list[Read] = []
        for array, view in views:
            found = [read for read in zxing_reads(array, view) if not _cut_by_tile(read, view, grey.shape)]
            pass_reads += found
            if settings.second_opinion:
                pass_reads += _second_opinion(grey, found)
                if name == "reduced":  # cheap here, and it finds linear codes zxing's detector skipped
                    pass_reads += pyzbar_reads(array, view)
        reads += [(read, name) for read in pass_reads if _check_digit_ok(read)]
        codes, _ = _resolve(reads, rules, institution)
        if any(code.role == "specimen" for code in codes) or (institution is None and codes):
            break  # without an institution no code is a specimen code: the first pass with any code ends it
    codes, conflicts = _resolve(reads, rules, institution)
    return _result(codes, conflicts, passes, institution, loaded, time.perf_counter() - started, notes)


def _passes(grey: np.ndarray, settings: BarcodeSettings) -> Iterator[tuple[Pass, Iterator[tuple[np.ndarray, View]]]]:
    """The cascade; each pass yields its arrays lazily, so a pass not reached costs nothing."""
    height, width = grey.shape
    long_side = max(width, height)
    factor = math.ceil(long_side / settings.reduced_long_side) if long_side > settings.reduced_long_side else 1
    if factor > 1:
        yield "reduced", _one(_reduce(grey, factor), View(scale=1 / factor))
    yield "full", _one(grey, View())
    yield "tiles", _tiles(grey, settings)
    base, base_view = (_reduce(grey, factor), View(scale=1 / factor)) if factor > 1 else (grey, View())
    yield "skew", _skewed(base, base_view, settings.skew_degrees)


def _cut_by_tile(read: Read, view: View, shape: tuple[int, ...]) -> bool:
    """A linear code that touches a tile's inner edge was cut by it: its value may be a fragment (ITF reads
    pieces of a longer code as valid codes). The tiles overlap, so another tile holds the whole symbol."""
    tile = view.tile
    if tile is None or family(read.symbology) != "linear":
        return False
    height, width = shape[0], shape[1]
    box, near = read.box, 3
    return (
        (tile.left > 0 and box.left <= tile.left + near)
        or (tile.top > 0 and box.top <= tile.top + near)
        or (tile.right < width and box.right >= tile.right - near)
        or (tile.bottom < height and box.bottom >= tile.bottom - near)
    )


def _second_opinion(grey: np.ndarray, reads: list[Read]) -> list[Read]:
    """pyzbar's reading of each linear code zxing found, on a full-resolution crop around it."""
    opinions: list[Read] = []
    height, width = grey.shape
    for read in reads:
        if read.symbology not in LINEAR:
            continue
        box = read.box
        margin_x, margin_y = (box.right - box.left) // 3 + 8, (box.bottom - box.top) + 8
        left, top = max(0, box.left - margin_x), max(0, box.top - margin_y)
        right, bottom = min(width, box.right + margin_x), min(height, box.bottom + margin_y)
        if right - left < 8 or bottom - top < 8:
            continue
        opinions += pyzbar_reads(np.ascontiguousarray(grey[top:bottom, left:right]), View(left=left, top=top))
    return opinions


def _one(array: np.ndarray, view: View) -> Iterator[tuple[np.ndarray, View]]:
    yield array, view


def _reduce(grey: np.ndarray, factor: int) -> np.ndarray:
    return np.asarray(Image.fromarray(grey).reduce(factor))


def _tiles(grey: np.ndarray, settings: BarcodeSettings) -> Iterator[tuple[np.ndarray, View]]:
    """``tile_grid`` x ``tile_grid`` overlapping tiles, each upscaled (bounded by ``tile_max_megapixels``)."""
    height, width = grey.shape
    n = settings.tile_grid
    tile_h, tile_w = math.ceil(height / n), math.ceil(width / n)
    pad_y, pad_x = int(tile_h * settings.tile_overlap), int(tile_w * settings.tile_overlap)
    for row in range(n):
        for col in range(n):
            top, left = max(0, row * tile_h - pad_y), max(0, col * tile_w - pad_x)
            bottom, right = min(height, (row + 1) * tile_h + pad_y), min(width, (col + 1) * tile_w + pad_x)
            tile = grey[top:bottom, left:right]
            if min(tile.shape) < _MIN_SIDE:
                continue  # an image a few pixels wide has no room for a code in a tile
            pixels = tile.shape[0] * tile.shape[1]
            scale = min(settings.tile_upscale, math.sqrt(settings.tile_max_megapixels * 1e6 / max(1, pixels)))
            if scale > 1.2:
                size = (round(tile.shape[1] * scale), round(tile.shape[0] * scale))
                tile = np.asarray(Image.fromarray(tile).resize(size, Image.Resampling.LANCZOS))
            else:
                scale = 1.0
            yield tile, View(left=left, top=top, scale=scale, tile=Box(left, top, right, bottom))


def _skewed(grey: np.ndarray, view: View, angles: tuple[float, ...]) -> Iterator[tuple[np.ndarray, View]]:
    """The image rotated by each angle on the same canvas; reads are mapped back through the rotation."""
    height, width = grey.shape
    for angle in angles:
        rotated = Image.fromarray(grey).rotate(angle, resample=Image.Resampling.BILINEAR, fillcolor=255)
        yield np.asarray(rotated), View(scale=view.scale, degrees=angle, centre=(width / 2, height / 2))


def _check_digit_ok(read: Read) -> bool:
    if read.symbology in ("ean13", "ean8", "upca"):
        return gtin_check_ok(read.value)
    return True


def _resolve(
    reads: list[tuple[Read, Pass]], rules: RuleTable, institution: str | None
) -> tuple[list[CodeRead], list[Conflict]]:
    """Reads of one symbol (the same place) with one value make a code; with several values, a conflict."""
    codes: list[CodeRead] = []
    conflicts: list[Conflict] = []
    for group in group_by_place(reads):
        group = without_itf_fragments(group)
        values = sorted({read.value for read, _ in group})
        if len(values) > 1:
            decoders = tuple(sorted({read.decoder for read, _ in group}))
            conflicts.append(Conflict(box=_tuple(group[0][0].box), values=tuple(values), decoders=decoders))
            continue
        code = _code(group, rules, institution)
        if code is not None:
            codes.append(code)
    return _merge_same_values(codes), conflicts


def _code(same: list[tuple[Read, Pass]], rules: RuleTable, institution: str | None) -> CodeRead | None:
    """The code that reads of one value at one place make; None when its value must not be reported."""
    first, found_by = same[0]
    decoders = tuple(sorted({read.decoder for read, _ in same}))
    if decoders == ("pyzbar",) and first.symbology not in _SELF_CHECKING:
        return None  # pyzbar alone, on a symbology without a mandatory check: not trusted with a value
    classified = rules.classify(first.value, first.symbology, institution)
    if classified is None:
        return None  # a rule's check character failed
    return CodeRead(
        value=first.value, identifier=classified.identifier, role=classified.role, symbology=first.symbology,
        box=_tuple(first.box), found_by=found_by, decoders=decoders, short_id=classified.short_id,
        institution=classified.institution,
    )  # fmt: skip


def _merge_same_values(codes: list[CodeRead]) -> list[CodeRead]:
    """A value read at two places (a tile overlap, a skewed copy) is one code, kept where it was first seen."""
    seen: dict[tuple[str, str], CodeRead] = {}
    for code in codes:
        key = (code.value, code.symbology)
        if key in seen:
            earlier = seen[key]
            decoders = tuple(sorted({*earlier.decoders, *code.decoders}))
            seen[key] = msgspec.structs.replace(earlier, decoders=decoders)
        else:
            seen[key] = code
    return list(seen.values())


def _tuple(box: Box) -> tuple[int, int, int, int]:
    return (box.left, box.top, box.right, box.bottom)


def _result(
    codes: list[CodeRead],
    conflicts: list[Conflict],
    passes: list[str],
    institution: str | None,
    loaded: LoadedImage,
    seconds: float,
    notes: list[str],
) -> BarcodeResult:
    by_role: Callable[[str], list[str]] = lambda role: _unique(c.identifier for c in codes if c.role == role)  # noqa: E731
    specimens, disposables = by_role("specimen"), by_role("disposable")
    subject: Subject = ""
    barcodes = specimens
    if specimens:
        subject = "specimen"
    elif disposables:
        subject, barcodes = "label", disposables
    elif by_role("device_target"):
        subject, barcodes = "device target", by_role("device_target")
    elif by_role("folder"):
        subject, barcodes = "folder", by_role("folder")
    elif by_role("label"):
        subject, barcodes = "label", by_role("label")
    return BarcodeResult(
        barcodes=barcodes,
        asset_subject=subject,
        MSO=len(specimens) > 1,
        MOS=bool(disposables),
        label=bool(disposables) and not specimens,
        disposable=disposables[0] if disposables else None,
        not_found=not codes and not conflicts,
        needs_review=bool(conflicts),
        codes=codes,
        conflicts=conflicts,
        passes=passes,
        institution=institution,
        image_size=loaded.size,
        seconds=round(seconds, 4),
        notes=notes,
    )


def _unique(values: Iterator[str] | list[str]) -> list[str]:
    return list(dict.fromkeys(values))
