"""The two barcode decoders behind one shape: a read is a value, a symbology and a box on the original image.

zxing-cpp reads every symbology we meet (DataMatrix, QR, Code 128/39, EAN/UPC, Codabar) and is the first
decoder; pyzbar reads only linear codes here and serves as a second opinion on them. Both are given a greyscale
array that may be a reduced copy, a tile or an upscaled tile; ``View`` maps its coordinates back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = ["Box", "Read", "View", "pyzbar_reads", "zxing_reads"]

Decoder = Literal["zxing", "pyzbar"]

_ZXING_NAMES = {
    "Code128": "code128", "Code39": "code39", "Code39Ext": "code39", "Code39Std": "code39", "Code93": "code93",
    "Codabar": "codabar", "EAN13": "ean13", "EAN8": "ean8", "UPCA": "upca", "UPCE": "upce", "ITF": "itf",
    "ITF14": "itf", "DataMatrix": "datamatrix", "QRCode": "qrcode", "MicroQRCode": "microqrcode",
    "RMQRCode": "qrcode", "Aztec": "aztec", "AztecCode": "aztec", "PDF417": "pdf417", "DataBar": "databar",
}  # fmt: skip
_PYZBAR_NAMES = {
    "CODE128": "code128", "CODE39": "code39", "CODE93": "code93", "CODABAR": "codabar", "EAN13": "ean13",
    "EAN8": "ean8", "UPCA": "upca", "UPCE": "upce", "I25": "itf",
}  # fmt: skip


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in the original image's pixels."""

    left: int
    top: int
    right: int
    bottom: int

    def containment(self, other: Box) -> float:
        """The share of the smaller box that lies inside the other (boxes count at least 2 px each way)."""
        a, b = self._at_least_2px(), other._at_least_2px()
        width = min(a.right, b.right) - max(a.left, b.left)
        height = min(a.bottom, b.bottom) - max(a.top, b.top)
        if width <= 0 or height <= 0:
            return 0.0
        return width * height / min(a.area, b.area)

    @property
    def area(self) -> int:
        return (self.right - self.left) * (self.bottom - self.top)

    def _at_least_2px(self) -> Box:
        return Box(self.left, self.top, max(self.right, self.left + 2), max(self.bottom, self.top + 2))


@dataclass(frozen=True)
class View:
    """Where an array handed to a decoder sits in the original: offset, scale, and rotation about its centre."""

    left: int = 0
    top: int = 0
    scale: float = 1.0  # array pixels per original pixel
    degrees: float = 0.0  # the array is the (scaled) original rotated counter-clockwise by this, same size
    centre: tuple[float, float] = (0.0, 0.0)  # the rotation's centre, in the array's pixels
    tile: Box | None = None  # the part of the original the array shows, when it is a tile

    def box(self, xs: list[float], ys: list[float]) -> Box:
        if self.degrees:
            xs, ys = self._unrotate(xs, ys)
        s = self.scale
        return Box(
            self.left + int(min(xs) / s), self.top + int(min(ys) / s),
            self.left + int(max(xs) / s) + 1, self.top + int(max(ys) / s) + 1,
        )  # fmt: skip

    def _unrotate(self, xs: list[float], ys: list[float]) -> tuple[list[float], list[float]]:
        """Undo Pillow's ``rotate(degrees)`` (same canvas, about the centre) for points on the rotated array."""
        cx, cy = self.centre
        t = math.radians(self.degrees)
        cos_t, sin_t = math.cos(t), math.sin(t)
        points = [(x - cx, y - cy) for x, y in zip(xs, ys, strict=True)]
        return [cx + dx * cos_t - dy * sin_t for dx, dy in points], [cy + dx * sin_t + dy * cos_t for dx, dy in points]


@dataclass(frozen=True)
class Read:
    """One decoded symbol."""

    value: str
    symbology: str
    box: Box
    decoder: Decoder


def zxing_reads(grey: np.ndarray, view: View) -> list[Read]:
    """Every symbol zxing-cpp finds in ``grey`` (any rotation, light-on-dark too)."""
    import zxingcpp

    reads = []
    for result in zxingcpp.read_barcodes(grey):
        if not result.valid:
            continue
        position = result.position
        corners = (position.top_left, position.top_right, position.bottom_right, position.bottom_left)
        box = view.box([p.x for p in corners], [p.y for p in corners])
        symbology = _ZXING_NAMES.get(result.format.name, result.format.name.lower())
        reads.append(_gtin13(Read(value=_text(result.bytes), symbology=symbology, box=box, decoder="zxing")))
    return reads


def pyzbar_reads(grey: np.ndarray, view: View) -> list[Read]:
    """The linear symbols pyzbar finds in ``grey``."""
    from pyzbar import pyzbar

    symbols = [getattr(pyzbar.ZBarSymbol, name) for name in _PYZBAR_NAMES]
    reads = []
    for decoded in pyzbar.decode(grey, symbols=symbols):
        rect = decoded.rect
        box = view.box([rect.left, rect.left + rect.width], [rect.top, rect.top + rect.height])
        symbology = _PYZBAR_NAMES.get(decoded.type, decoded.type.lower())
        reads.append(_gtin13(Read(value=_text(decoded.data), symbology=symbology, box=box, decoder="pyzbar")))
    return reads


def _gtin13(read: Read) -> Read:
    """UPC-A is EAN-13 with a leading zero; decoders differ in which they report, so both become EAN-13."""
    if read.symbology == "upca" and len(read.value) == 12 and read.value.isdigit():
        return Read(value="0" + read.value, symbology="ean13", box=read.box, decoder=read.decoder)
    return read


def _text(data: bytes) -> str:
    """Barcode bytes as text: UTF-8 when valid, else Latin-1 (what ISO 15417/16388 default to)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")
