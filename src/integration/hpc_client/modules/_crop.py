"""Find the crop of a sheet: everything that is not bare paper (specimen, ruler, colour chart, labels).

On a reduced copy: the paper colour is the most common colour; the sheet is where rows and columns are mostly
paper (the backdrop around it is not); inside the sheet, pixels far from the paper colour are content, and
rows/columns holding more than a few of them bound it. The box is mapped back to full size with a margin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

__all__ = ["CropBox", "find_crop"]

_WORK_LONG_SIDE = 1000
_COLOUR_STEP = 16  # the paper colour is found on a histogram of colours quantised to this step
_PAPER_DISTANCE = 42.0  # a pixel farther than this (RGB, Euclidean) from the paper colour is not paper
_MIN_CONTENT_SHARE = 0.004  # a row/column is content when this share of its pixels is


@dataclass(frozen=True)
class CropBox:
    left: int
    top: int
    right: int
    bottom: int

    @property
    def area(self) -> int:
        return max(0, self.right - self.left) * max(0, self.bottom - self.top)

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.left, self.top, self.right, self.bottom)


def find_crop(image: Image.Image, *, margin_share: float = 0.01) -> CropBox | None:
    """The box of everything on the sheet that is not paper, with a margin; None if nothing is on it."""
    width, height = image.size
    factor = max(1, round(max(width, height) / _WORK_LONG_SIDE))
    small = np.asarray(image.convert("RGB").reduce(factor), dtype=np.float32)
    paper = _paper_colour(small)
    not_paper = np.sqrt(np.square(small - paper).sum(axis=2)) > _PAPER_DISTANCE
    sheet = _sheet_bounds(~not_paper)
    if sheet is None:
        return None
    top, bottom, left, right = sheet
    inner = not_paper[top:bottom, left:right]
    rows = np.flatnonzero(inner.sum(axis=1) > max(2, _MIN_CONTENT_SHARE * inner.shape[1]))
    cols = np.flatnonzero(inner.sum(axis=0) > max(2, _MIN_CONTENT_SHARE * inner.shape[0]))
    if rows.size == 0 or cols.size == 0:
        return None
    margin = margin_share * max(width, height)
    return CropBox(
        left=max(0, int((left + cols[0]) * factor - margin)),
        top=max(0, int((top + rows[0]) * factor - margin)),
        right=min(width, int((left + cols[-1] + 1) * factor + margin)),
        bottom=min(height, int((top + rows[-1] + 1) * factor + margin)),
    )


def _paper_colour(pixels: np.ndarray) -> np.ndarray:
    """The paper's colour: the most common colour of the image's central part (a backdrop lies at the edges).

    Colours are binned twice, the second grid shifted by half a bin, so paper whose colour sits on a bin edge
    is not split in two and outvoted by a uniform backdrop.
    """
    height, width = pixels.shape[:2]
    centre = pixels[height // 5 : height - height // 5, width // 5 : width - width // 5].reshape(-1, 3)
    best_count, best_mean = -1, centre.mean(axis=0)
    for offset in (0.0, _COLOUR_STEP / 2):
        quantised = ((centre + offset) // _COLOUR_STEP).astype(np.int32)
        keys = (quantised[:, 0] * 256 + quantised[:, 1]) * 256 + quantised[:, 2]
        values, counts = np.unique(keys, return_counts=True)
        if counts.max() > best_count:
            best_count = int(counts.max())
            best_mean = centre[keys == values[np.argmax(counts)]].mean(axis=0)
    result: np.ndarray = best_mean
    return result


def _sheet_bounds(paper: np.ndarray) -> tuple[int, int, int, int] | None:
    """Rows and columns where at least a third of the pixels are paper, shrunk by 1 % (the sheet's edge)."""
    rows = np.flatnonzero(paper.mean(axis=1) > 1 / 3)
    cols = np.flatnonzero(paper.mean(axis=0) > 1 / 3)
    if rows.size == 0 or cols.size == 0:
        return None
    pad_y, pad_x = max(1, paper.shape[0] // 100), max(1, paper.shape[1] // 100)
    top, bottom = rows[0] + pad_y, rows[-1] + 1 - pad_y
    left, right = cols[0] + pad_x, cols[-1] + 1 - pad_x
    if bottom <= top or right <= left:
        return None
    return int(top), int(bottom), int(left), int(right)
