"""The OCR job: find the label regions of an image, straighten each, read it with tesseract, say how sure it is.

Two stages (docs/hpc-ocr.md): tesseract's sparse-text layout pass on a reduced copy finds words anywhere on the
image; words close to each other form a region (a label, a card, a stamp). Each region is then cut from the
full-resolution image, scaled so its text is about ``target_text_px`` high, deskewed (projection profiles over
+-5 degrees) and read as a block with our labels' languages. A 54 MP page is never OCR'd whole: glyphs that
large defeat tesseract (notes/environment.md §4).

Handwriting is out of tesseract's reach: such regions come back with a low confidence and are kept out of
``tags_ocr`` rather than filling the metadata with garbage.
"""

from __future__ import annotations

import functools
import math
import os
import statistics
import time
from pathlib import Path

import msgspec
import numpy as np
from PIL import Image, ImageOps

from integration.errors import ConfigError, ImageUnreadable, NodeResourceError

from ._components import connected_components
from ._image import DEFAULT_MAX_MEGAPIXELS, LoadedImage, load_image
from ._job import JobInput, node_failures

__all__ = [
    "MODULE_VERSION",
    "OcrJob",
    "OcrRegion",
    "OcrResult",
    "OcrSettings",
    "read_text",
    "read_text_file",
    "run_ocr",
]

MODULE_VERSION = "1.0.0"


class OcrSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How to find and read labels; the defaults are what docs/benchmarks.md measured."""

    languages: tuple[str, ...] = ("eng", "dan", "deu", "fra", "lat")  # those installed are used, in this order
    #: the first language decides ambiguous glyphs ("ø" or "o"): per institution, the labels' own language first
    languages_by_institution: dict[str, tuple[str, ...]] = msgspec.field(
        default_factory=lambda: {
            "NHMD": ("dan", "eng", "lat", "deu", "fra"),
            "NHMA": ("dan", "eng", "lat", "deu", "fra"),
            "BERN": ("deu", "eng", "lat", "fra"),
            "MfN": ("deu", "eng", "lat", "fra"),
        }
    )
    locate_long_side: int = 3000  # the layout pass reads a copy reduced to this long side
    #: each region is read with its median word scaled to each of these heights; the more confident reading wins
    target_text_px: tuple[int, ...] = (36, 56)
    min_word_confidence: float = 30.0  # layout words below this do not start a region
    min_region_chars: int = 6  # regions with fewer letters/digits are dropped (specks, stamps)
    region_margin_lines: float = 2.5  # a region reaches this many line heights beyond its words
    low_confidence: float = 60.0  # a region below this mean word confidence is "low confidence"
    trusted_word_confidence: float = 50.0  # words below this are left out of a region's text (kept in all_text)
    max_skew_degrees: float = 5.0
    try_rotations: bool = True  # no text upright: try the image turned by 90, 270, 180 degrees
    max_region_megapixels: float = 6.0  # a region is not scaled beyond this (time grows with it, reading does not)
    timeout_s: float = 120.0  # per tesseract call
    max_megapixels: float = DEFAULT_MAX_MEGAPIXELS


class OcrRegion(msgspec.Struct, frozen=True, kw_only=True):
    box: tuple[int, int, int, int]  # left, top, right, bottom in the upright image
    text: str  # the words tesseract is reasonably sure of (trusted_word_confidence), line by line
    all_text: str  # everything it read, for a person to judge
    confidence: float  # mean word confidence (weighted by length), 0..100
    words: int
    untrusted_words: int  # words left out of ``text``
    low_confidence: bool
    skew_degrees: float


class OcrResult(msgspec.Struct, frozen=True, kw_only=True):
    regions: list[OcrRegion]
    tags_ocr: str  # what goes into metadata tags.ocr: the confident regions, top to bottom
    languages: list[str]
    image_size: tuple[int, int]
    seconds: float
    rotation: int = 0  # degrees counter-clockwise the image was turned to find text; region boxes are in that frame
    module: str = "ocr"
    version: str = MODULE_VERSION
    notes: list[str] = []


class _Word(msgspec.Struct, frozen=True):
    left: int
    top: int
    right: int
    bottom: int
    text: str
    confidence: float


class OcrJob(JobInput, frozen=True, kw_only=True):
    """The OCR job: the asset's image, read in the languages of its metadata's ``institution``."""

    settings: OcrSettings = msgspec.field(default_factory=OcrSettings)


def run_ocr(job: OcrJob) -> OcrResult:
    with node_failures(f"ocr {job.guid}"):
        return read_text_file(job.image_path, institution=job.institution, settings=job.settings)


def read_text_file(path: Path, *, institution: str | None = None, settings: OcrSettings | None = None) -> OcrResult:
    settings = settings or OcrSettings()
    loaded = load_image(path, max_megapixels=settings.max_megapixels)
    return read_text(loaded, institution=institution, settings=settings)


def read_text(loaded: LoadedImage, *, institution: str | None = None, settings: OcrSettings | None = None) -> OcrResult:
    """OCR every label region of ``loaded``; ``institution`` picks the languages' order."""
    settings = settings or OcrSettings()
    started = time.perf_counter()
    wanted = _languages_for(institution, settings)
    languages, notes = _languages(wanted)
    grey = loaded.grey()
    source = str(loaded.path)
    words = _layout_words(grey, settings, source)
    rotation = 0
    if settings.try_rotations and _text_score(words) < _UPRIGHT_ENOUGH:
        best = _text_score(words)
        for quarter_turns in (1, 3, 2):
            turned = np.ascontiguousarray(np.rot90(grey, k=quarter_turns))  # counter-clockwise
            turned_words = _layout_words(turned, settings, source)
            if _text_score(turned_words) > 2 * best + _UPRIGHT_ENOUGH / 4:
                grey, words, rotation, best = turned, turned_words, 90 * quarter_turns, _text_score(turned_words)
        if rotation:
            notes.append(f"little text upright: read after turning the image {rotation} degrees counter-clockwise")
    regions = []
    for found in _regions(words, grey.shape, settings):
        region = _read_region(grey, found, "+".join(languages), settings, source)
        if region is not None:
            regions.append(region)
    regions.sort(key=lambda r: (r.box[1], r.box[0]))
    confident = [r.text for r in regions if not r.low_confidence and r.text]
    if regions and not confident:
        notes.append("every region read with low confidence (handwriting?): tags.ocr left empty")
    return OcrResult(
        regions=regions,
        tags_ocr="\n\n".join(confident),
        languages=languages,
        image_size=loaded.size,
        seconds=round(time.perf_counter() - started, 3),
        rotation=rotation,
        notes=[*loaded.notes, *notes],
    )


#: letters in confidently read layout words above which the image is taken to be upright (about three words)
_UPRIGHT_ENOUGH = 15


def _text_score(words: list[_Word]) -> int:
    """Letters in layout words tesseract is fairly sure of: sideways text gives few, upright text many."""
    return sum(sum(ch.isalpha() for ch in word.text) for word in words if word.confidence >= 70)


def _languages_for(institution: str | None, settings: OcrSettings) -> tuple[str, ...]:
    if institution:
        for name, languages in settings.languages_by_institution.items():
            if name.casefold() == institution.casefold():
                return languages
    return settings.languages


@functools.cache
def _installed_languages() -> frozenset[str]:
    import pytesseract

    try:
        return frozenset(pytesseract.get_languages(config=""))
    except (pytesseract.TesseractNotFoundError, OSError) as exc:
        raise ConfigError("tesseract is not installed here (Debian: apt-get install tesseract-ocr)") from exc


def _languages(wanted: tuple[str, ...]) -> tuple[list[str], list[str]]:
    installed = _installed_languages()
    languages = [lang for lang in wanted if lang in installed]
    missing = [lang for lang in wanted if lang not in installed]
    if not languages:
        raise ConfigError(f"none of the OCR languages {', '.join(wanted)} is installed (tesseract-ocr-<lang>)")
    notes = [f"OCR languages not installed: {', '.join(missing)}"] if missing else []
    return languages, notes


def _tesseract_data(image: Image.Image, *, lang: str, psm: int, timeout_s: float, source: str) -> list[_Word]:
    """tesseract's words with boxes and confidences; ``OMP_THREAD_LIMIT=1`` so parallel jobs do not fight."""
    import pytesseract

    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    try:
        data = pytesseract.image_to_data(
            image, lang=lang, config=f"--psm {psm}", output_type=pytesseract.Output.DICT, timeout=timeout_s
        )
    except pytesseract.TesseractNotFoundError as exc:
        raise ConfigError("tesseract is not installed here (Debian: apt-get install tesseract-ocr)") from exc
    except pytesseract.TesseractError as exc:
        if exc.status < 0:  # killed by a signal: the kernel's OOM killer, a node shutting down
            raise NodeResourceError(f"tesseract was killed on {source} (status {exc.status})") from exc
        raise ImageUnreadable(f"tesseract failed on {source}: {exc}", path=source) from exc
    except RuntimeError as exc:  # pytesseract's timeout (TesseractError, handled above, is a RuntimeError too)
        raise NodeResourceError(f"tesseract did not finish {source} within {timeout_s:g} s") from exc
    except OSError as exc:  # its temporary files: a full or failing disk
        raise NodeResourceError(f"tesseract could not run on {source}: {exc}") from exc
    return _words_of(data)


def _words_of(data: dict[str, list[object]]) -> list[_Word]:
    """tesseract's non-empty words of known confidence; the last word of each line ends in a newline (lines by
    tesseract's block/paragraph/line numbers)."""
    kept = [i for i, text in enumerate(data["text"]) if str(text).strip() and float(str(data["conf"][i])) >= 0]
    line_of = [(data["block_num"][i], data["par_num"][i], data["line_num"][i]) for i in kept]
    words = []
    for n, i in enumerate(kept):
        ends_line = n == len(kept) - 1 or line_of[n + 1] != line_of[n]
        left, top = int(str(data["left"][i])), int(str(data["top"][i]))
        right, bottom = left + int(str(data["width"][i])), top + int(str(data["height"][i]))
        text = str(data["text"][i]).strip() + ("\n" if ends_line else "")
        words.append(_Word(left, top, right, bottom, text, float(str(data["conf"][i]))))
    return words


def _layout_words(grey: np.ndarray, settings: OcrSettings, source: str) -> list[_Word]:
    """Words found by a sparse-text pass over a reduced copy, in the original's pixels."""
    height, width = grey.shape
    factor = max(1.0, max(height, width) / settings.locate_long_side)
    small = Image.fromarray(grey)
    if factor > 1.0:
        small = small.resize((round(width / factor), round(height / factor)), Image.Resampling.LANCZOS)
    small = ImageOps.autocontrast(small, cutoff=1)
    found = _tesseract_data(small, lang="eng", psm=11, timeout_s=settings.timeout_s, source=source)
    words = []
    for word in found:
        letters = sum(ch.isalnum() for ch in word.text)
        if word.confidence >= settings.min_word_confidence and letters >= 2:
            words.append(
                _Word(
                    int(word.left * factor), int(word.top * factor), math.ceil(word.right * factor),
                    math.ceil(word.bottom * factor), word.text.strip(), word.confidence,
                )
            )  # fmt: skip
    return words


class _Region(msgspec.Struct):
    left: int
    top: int
    right: int
    bottom: int
    text_px: float  # median word height
    chars: int


def _regions(words: list[_Word], shape: tuple[int, ...], settings: OcrSettings) -> list[_Region]:
    """Words close to each other form a region; each grows by ``region_margin_lines`` line heights (layout
    passes miss faint lines at a label's edge) and regions that then overlap are merged."""
    height, width = shape[0], shape[1]
    regions = []
    for group in _group_words(words):
        chars = sum(ch.isalnum() for w in group for ch in w.text)
        text_px = statistics.median(w.bottom - w.top for w in group)
        margin = int(text_px * settings.region_margin_lines) + 4
        regions.append(
            _Region(
                max(0, min(w.left for w in group) - margin), max(0, min(w.top for w in group) - margin),
                min(width, max(w.right for w in group) + margin), min(height, max(w.bottom for w in group) + margin),
                text_px, chars,
            )
        )  # fmt: skip
    merged = True
    while merged:
        merged = False
        for i, a in enumerate(regions):
            for b in regions[i + 1 :]:
                if a.left <= b.right and b.left <= a.right and a.top <= b.bottom and b.top <= a.bottom:
                    a.left, a.top = min(a.left, b.left), min(a.top, b.top)
                    a.right, a.bottom = max(a.right, b.right), max(a.bottom, b.bottom)
                    a.text_px = a.text_px if a.chars >= b.chars else b.text_px
                    a.chars += b.chars
                    regions.remove(b)
                    merged = True
                    break
            if merged:
                break
    return [r for r in regions if r.chars >= settings.min_region_chars]


def _group_words(words: list[_Word]) -> list[list[_Word]]:
    """Words whose boxes, grown by about a line height, touch belong to one group."""

    def grown(word: _Word) -> tuple[int, int, int, int]:
        h = word.bottom - word.top
        return word.left - 2 * h, word.top - h, word.right + 2 * h, word.bottom + h

    def touching(x: _Word, y: _Word) -> bool:
        a, b = grown(x), grown(y)
        return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]

    return connected_components(words, touching)


def _read_region(grey: np.ndarray, region: _Region, lang: str, settings: OcrSettings, source: str) -> OcrRegion | None:
    readings = [_read_at(grey, region, lang, text_px, settings, source) for text_px in settings.target_text_px]
    found = [reading for reading in readings if reading is not None]
    return max(found, key=lambda reading: (reading.confidence, reading.words)) if found else None


def _read_at(
    grey: np.ndarray, region: _Region, lang: str, text_px: int, settings: OcrSettings, source: str
) -> OcrRegion | None:
    left, top, right, bottom = region.left, region.top, region.right, region.bottom
    crop = Image.fromarray(grey[top:bottom, left:right])
    scale = min(4.0, max(0.2, text_px / max(1.0, region.text_px)))
    scale = min(scale, math.sqrt(settings.max_region_megapixels * 1e6 / max(1, crop.width * crop.height)))
    if abs(scale - 1.0) > 0.1:
        size = (max(1, round(crop.width * scale)), max(1, round(crop.height * scale)))
        crop = crop.resize(size, Image.Resampling.LANCZOS)
    crop = ImageOps.autocontrast(crop, cutoff=1)
    skew = _skew_degrees(crop, settings.max_skew_degrees)
    if skew:
        crop = crop.rotate(skew, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=255)
    read = _tesseract_data(crop, lang=lang, psm=6, timeout_s=settings.timeout_s, source=source)
    kept = [w for w in read if sum(ch.isalnum() for ch in w.text) > 0]
    if not kept:
        return None
    weights = [max(1, len(w.text.strip())) for w in kept]
    confidence = sum(w.confidence * k for w, k in zip(kept, weights, strict=True)) / sum(weights)
    trusted = [w for w in kept if w.confidence >= settings.trusted_word_confidence]
    return OcrRegion(
        box=(left, top, right, bottom),
        text=_joined(kept, settings.trusted_word_confidence),
        all_text=_joined(kept, 0.0),
        confidence=round(confidence, 1),
        words=len(kept),
        untrusted_words=len(kept) - len(trusted),
        low_confidence=confidence < settings.low_confidence,
        skew_degrees=skew,
    )


def _joined(words: list[_Word], min_confidence: float) -> str:
    """The words at or above ``min_confidence``, one text line per tesseract line."""
    lines: list[list[str]] = [[]]
    for word in words:
        if word.confidence >= min_confidence:
            lines[-1].append(word.text.strip())
        if word.text.endswith("\n"):
            lines.append([])
    return "\n".join(" ".join(line) for line in lines if line)


def _skew_degrees(crop: Image.Image, limit: float) -> float:
    """The rotation that makes text lines horizontal: the angle whose row profile of ink is the sharpest."""
    small = crop if crop.width <= 800 else crop.resize((800, max(1, round(crop.height * 800 / crop.width))))
    ink = np.asarray(small) < 128
    if ink.sum() < 50:
        return 0.0
    image = Image.fromarray((ink * 255).astype(np.uint8))
    steps = round(limit * 2)
    scores: dict[float, float] = {}
    for k in range(-steps, steps + 1):
        rows = np.asarray(image.rotate(k / 2, resample=Image.Resampling.NEAREST)).sum(axis=1, dtype=np.float64)
        scores[k / 2] = float(np.square(np.diff(rows)).sum())
    best = max(scores, key=lambda angle: scores[angle])
    return 0.0 if scores[0.0] >= 0.98 * scores[best] else best
