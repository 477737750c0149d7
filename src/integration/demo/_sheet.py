"""Draw a synthetic herbarium sheet: paper, a pressed plant, a Code128 barcode sticker and a collection label.

The picture only has to look plausible and carry what the pipeline reads: a barcode that pyzbar/zxing decode
and a label that tesseract can read. Everything is drawn with ImageDraw primitives or numpy array operations;
there is no per-pixel Python loop, so a 2 MP sheet takes a few tens of milliseconds.
"""

from __future__ import annotations

import functools
import math
import random
from pathlib import Path
from typing import TypeAlias

import barcode
import numpy as np
from PIL import Image, ImageDraw, ImageFont

__all__ = ["COLLECTORS", "LOCALITIES", "code128_modules", "content_box", "render_sheet"]

COLLECTORS: tuple[str, ...] = (
    "J. Lange",
    "C. Raunkiaer",
    "M. T. Lange",
    "O. Hagerup",
    "K. Wiinstedt",
    "A. Hansen",
    "E. Warming",
    "J. Smith",
)
LOCALITIES: tuple[str, ...] = (
    "Zealand: Gribskov, beech forest",
    "Jutland: Rold Skov, wet meadow",
    "Funen: Svanninge Bakker, dry slope",
    "Bornholm: Almindingen, forest edge",
    "Zealand: Stevns Klint, chalk grassland",
    "Jutland: Skagen, coastal dunes",
)
_MONTHS = ("Apr", "May", "Jun", "Jul", "Aug", "Sep")

_FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
_PAPER = (238, 232, 212)
_BACKDROP = (52, 54, 58)
_INK = (28, 26, 24)
_CHART = (
    (115, 82, 68), (194, 150, 130), (98, 122, 157), (87, 108, 67), (133, 128, 177), (103, 189, 170),
    (214, 126, 44), (243, 243, 242), (160, 160, 160), (85, 85, 85), (52, 52, 52),
)  # fmt: skip

_Font: TypeAlias = ImageFont.FreeTypeFont | ImageFont.ImageFont
_Point: TypeAlias = tuple[float, float]


@functools.lru_cache(maxsize=64)
def _font(name: str, size: int) -> _Font:
    """DejaVu ``name`` at ``size`` px if installed, else Pillow's bundled default font at that size."""
    path = _FONT_DIR / name
    if path.is_file():
        return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size)


def code128_modules(text: str) -> np.ndarray:
    """The Code128 symbol for ``text`` as a bool array, one entry per module, True for a bar.

    Taken from python-barcode's module string rather than its ImageWriter, whose bars come out one pixel
    off at small module widths and then fail to decode (notes/environment.md §4).
    """
    modules: str = barcode.get("code128", text).build()[0]
    bars: np.ndarray = np.frombuffer(modules.encode("ascii"), dtype=np.uint8) == ord("1")
    return bars


def _barcode_strip(text: str, *, module_px: int, bar_height: int) -> Image.Image:
    """Black bars on white with a 10-module quiet zone each side, as an ``L`` image."""
    bars = np.pad(code128_modules(text), 10, constant_values=False)
    row = np.where(np.repeat(bars, module_px), 0, 255).astype(np.uint8)
    return Image.fromarray(np.broadcast_to(row, (bar_height, row.size)).copy(), mode="L")


def _paper(width: int, height: int, rng: random.Random) -> Image.Image:
    """A backdrop with the cream sheet on it; the paper has a faint, smooth, deterministic mottling.

    The mottling is a coarse noise field scaled up bilinearly and mapped onto each channel through a lookup
    table, so the work stays inside Pillow's C loops.
    """
    margin_x, margin_y = width // 40, height // 60
    sheet_w, sheet_h = width - 2 * margin_x, height - 2 * margin_y
    np_rng = np.random.default_rng(rng.getrandbits(64))
    coarse = np.clip(np_rng.normal(128.0, 2.5, size=(max(2, sheet_h // 48), max(2, sheet_w // 48))), 0, 255)
    mottle = Image.fromarray(coarse.astype(np.uint8), mode="L").resize((sheet_w, sheet_h), Image.Resampling.BILINEAR)
    bands = [mottle.point([min(255, max(0, level + v - 128)) for v in range(256)]) for level in _PAPER]
    image = Image.new("RGB", (width, height), _BACKDROP)
    image.paste(Image.merge("RGB", bands), (margin_x, margin_y))
    return image


def _path(start: _Point, *, heading: float, length: float, segments: int, rng: random.Random) -> list[_Point]:
    """A gently wandering polyline from ``start``; ``heading`` in radians, 0 pointing up the page."""
    points = [start]
    x, y = start
    step = length / segments
    for _ in range(segments):
        heading = 0.85 * heading + rng.gauss(0.0, 0.08)
        x += step * math.sin(heading)
        y -= step * math.cos(heading)
        points.append((x, y))
    return points


def _leaf_polygon(base: _Point, *, angle: float, length: float, breadth: float) -> list[_Point]:
    """An elliptic-lanceolate leaf outline from ``base`` pointing along ``angle`` (radians, 0 = up)."""
    t = np.linspace(0.0, 1.0, 14)
    half = breadth / 2 * np.sin(np.pi * t) ** 0.8
    along = np.concatenate([t, t[::-1]]) * length
    across = np.concatenate([half, -half[::-1]])
    sin_a, cos_a = math.sin(angle), math.cos(angle)
    xs = base[0] + along * sin_a + across * cos_a
    ys = base[1] - along * cos_a + across * sin_a
    return list(zip(xs.tolist(), ys.tolist(), strict=True))


def _green(rng: random.Random) -> tuple[int, int, int]:
    """A dried-plant olive green, slightly different each call."""
    return (rng.randint(70, 110), rng.randint(95, 130), rng.randint(35, 60))


def _draw_leaves_along(draw: ImageDraw.ImageDraw, stem: list[_Point], *, size: float, rng: random.Random) -> None:
    """Alternate leaves at every second node of ``stem``, each with a darker outline and a midrib."""
    for index in range(2, len(stem) - 1, 2):
        side = 1 if index % 4 == 0 else -1
        angle = side * rng.uniform(0.6, 1.2)
        length = size * rng.uniform(0.7, 1.2)
        polygon = _leaf_polygon(stem[index], angle=angle, length=length, breadth=length * rng.uniform(0.28, 0.4))
        fill = _green(rng)
        draw.polygon(polygon, fill=fill, outline=tuple(c - 30 for c in fill))
        tip = polygon[13]
        draw.line([stem[index], tip], fill=tuple(c - 25 for c in fill), width=max(1, int(size / 60)))


def _draw_plant(draw: ImageDraw.ImageDraw, width: int, height: int, rng: random.Random) -> None:
    """One or two stems from the lower middle of the sheet with branches, leaves and a few flower heads."""
    stem_width = max(2, width // 300)
    for _ in range(rng.randint(1, 2)):
        base = (width * rng.uniform(0.35, 0.6), height * rng.uniform(0.7, 0.78))
        stem = _path(base, heading=rng.uniform(-0.2, 0.2), length=height * 0.55, segments=24, rng=rng)
        draw.line(stem, fill=(96, 108, 52), width=stem_width, joint="curve")
        _draw_leaves_along(draw, stem, size=width * 0.11, rng=rng)
        for node in rng.sample(stem[6:-4], k=3):
            heading = rng.choice((-1, 1)) * rng.uniform(0.4, 0.9)
            branch = _path(node, heading=heading, length=height * 0.15, segments=8, rng=rng)
            draw.line(branch, fill=(96, 108, 52), width=max(1, stem_width - 1), joint="curve")
            _draw_leaves_along(draw, branch, size=width * 0.06, rng=rng)
            _draw_flower(draw, branch[-1], radius=width * 0.012, rng=rng)
        _draw_flower(draw, stem[-1], radius=width * 0.016, rng=rng)
        _draw_tape(draw, stem[3], width=width)


def _draw_flower(draw: ImageDraw.ImageDraw, centre: _Point, *, radius: float, rng: random.Random) -> None:
    """A faded flower head: a ring of petals around a darker centre."""
    petal = rng.choice(((214, 196, 120), (176, 150, 180), (226, 220, 200)))
    for k in range(6):
        angle = k * math.pi / 3
        petal_centre = (centre[0] + radius * math.cos(angle), centre[1] + radius * math.sin(angle))
        draw.ellipse(_disc(petal_centre, radius * 0.7), fill=petal)
    draw.ellipse(_disc(centre, radius * 0.5), fill=(120, 96, 40))


def _disc(centre: _Point, radius: float) -> tuple[float, float, float, float]:
    """The bounding box of a circle, as ImageDraw.ellipse wants it."""
    return (centre[0] - radius, centre[1] - radius, centre[0] + radius, centre[1] + radius)


def _draw_tape(draw: ImageDraw.ImageDraw, at: _Point, *, width: int) -> None:
    """A strip of mounting tape across the stem."""
    half_w, half_h = width * 0.035, width * 0.008
    draw.rectangle((at[0] - half_w, at[1] - half_h, at[0] + half_w, at[1] + half_h), fill=(244, 240, 226))


def _draw_barcode_sticker(image: Image.Image, text: str, *, right: bool = False) -> None:
    """A white sticker at the top left (``right``: top right) holding the Code128 barcode and its text."""
    width, height = image.size
    module_px = max(2, width // 400)  # pyzbar misses many codes drawn at 1 px per module
    strip = _barcode_strip(text, module_px=module_px, bar_height=max(40, height // 20))
    font = _font("DejaVuSansMono.ttf", max(10, width // 60))
    pad = module_px * 4
    text_h = int(font.size) if isinstance(font, ImageFont.FreeTypeFont) else 12
    sticker = Image.new("RGB", (strip.width, strip.height + text_h + 3 * pad), (255, 255, 255))
    sticker.paste(strip.convert("RGB"), (0, pad))
    ImageDraw.Draw(sticker).text(
        (strip.width // 2, strip.height + 2 * pad), text, font=font, fill=(0, 0, 0), anchor="mt"
    )
    left = width - width // 40 - width // 25 - sticker.width if right else width // 40 + width // 25
    image.paste(sticker, (left, height // 60 + height // 40))


def _draw_colour_chart(draw: ImageDraw.ImageDraw, width: int, height: int) -> None:
    """A small colour/grey target and a 5-unit scale bar at the bottom left, as on real digitised sheets."""
    patch = max(8, width // 40)
    left, top = width // 40 + width // 25, height - height // 60 - height // 40 - 2 * patch
    for k, colour in enumerate(_CHART):
        draw.rectangle((left + k * patch, top, left + (k + 1) * patch - 1, top + patch - 1), fill=colour)
    bar_top, bar_bottom = top + patch + patch // 2, top + patch + patch // 2 + patch // 3
    for k in range(5):
        shade = _INK if k % 2 == 0 else (250, 250, 250)
        draw.rectangle((left + k * patch * 2, bar_top, left + (k + 1) * patch * 2 - 1, bar_bottom), fill=shade)
    draw.rectangle((left, bar_top, left + 10 * patch - 1, bar_bottom), outline=_INK)


def _label_lines(institution: str, taxon: str, rng: random.Random) -> list[tuple[str, str]]:
    """The label's lines as (font file, text), top to bottom."""
    year = rng.randint(1870, 1985)
    day, month = rng.randint(1, 28), rng.choice(_MONTHS)
    return [
        ("DejaVuSerif-Bold.ttf", f"Herbarium {institution}"),
        ("DejaVuSerif.ttf", "Flora of Denmark"),
        ("DejaVuSerif-BoldItalic.ttf", taxon),
        ("DejaVuSerif.ttf", rng.choice(LOCALITIES)),
        ("DejaVuSerif.ttf", f"leg. {rng.choice(COLLECTORS)}   {day} {month} {year}"),
    ]


def _draw_label(image: Image.Image, institution: str, taxon: str, rng: random.Random) -> None:
    """A bordered collection label at the bottom right, its font shrunk until the longest line fits."""
    width, height = image.size
    lines = _label_lines(institution, taxon, rng)
    draw = ImageDraw.Draw(image)
    max_text_w = width * 0.5
    size = max(10, width // 42)
    while size > 8 and max(draw.textlength(t, font=_font(f, size)) for f, t in lines) > max_text_w:
        size -= 1
    pad, leading = size, int(size * 1.45)
    text_w = max(draw.textlength(t, font=_font(f, size)) for f, t in lines)
    box_w, box_h = int(text_w) + 2 * pad, leading * len(lines) + 2 * pad
    right, bottom = width - width // 40 - width // 30, height - height // 60 - height // 40
    left, top = right - box_w, bottom - box_h
    draw.rectangle((left, top, right, bottom), fill=(250, 248, 240), outline=_INK, width=max(2, size // 8))
    inset = max(3, size // 4)
    draw.rectangle((left + inset, top + inset, right - inset, bottom - inset), outline=_INK, width=1)
    for row, (font_name, text) in enumerate(lines):
        draw.text((left + pad, top + pad + row * leading), text, font=_font(font_name, size), fill=_INK)


def render_sheet(
    *,
    barcode: str,
    taxon: str,
    institution: str,
    width: int,
    height: int,
    rng: random.Random,
    disposable: str = "",
) -> Image.Image:
    """Draw a herbarium sheet as an RGB image of ``width`` x ``height``; deterministic for ``rng``'s state.

    The barcode sticker sits at the top left (Code128 of ``barcode``), the label at the bottom right names
    ``institution``, ``taxon``, a locality and a collector with a date. A ``disposable`` MOS code gets a second
    sticker at the top right; with no ``barcode`` the picture is a MOS label photographed on its own: paper,
    colour chart, the disposable sticker and the label, no plant.
    """
    if width < 400 or height < 400:
        raise ValueError(f"a sheet needs at least 400x400 px to hold barcode and label, got {width}x{height}")
    image = _paper(width, height, rng)
    if barcode:
        _draw_plant(ImageDraw.Draw(image), width, height, rng)
    _draw_colour_chart(ImageDraw.Draw(image), width, height)
    if barcode:
        _draw_barcode_sticker(image, barcode)
    if disposable:
        _draw_barcode_sticker(image, disposable, right=True)
    _draw_label(image, institution, taxon, rng)
    return image


def content_box(sheet: Image.Image, *, width: int, height: int, rng_state: object) -> tuple[int, int, int, int]:
    """The box (left, top, right, bottom) of everything drawn on the paper of ``sheet``: plant, colour chart and
    scale bar, barcode sticker, label. ``rng_state`` is ``rng.getstate()`` from before ``sheet`` was rendered.

    The paper alone is rendered again from the same random state and compared pixel by pixel, so the box is
    exact: it is the ground truth the cropping module is measured against.
    """
    rng = random.Random()
    rng.setstate(rng_state)  # type: ignore[arg-type]
    paper = np.asarray(_paper(width, height, rng), dtype=np.int16)
    drawn = np.abs(np.asarray(sheet, dtype=np.int16) - paper).max(axis=2) > 0
    rows, cols = np.flatnonzero(drawn.any(axis=1)), np.flatnonzero(drawn.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1
