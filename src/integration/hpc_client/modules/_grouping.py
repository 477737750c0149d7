"""Which reads are of one symbol: the geometry behind "never a wrong value" (docs/hpc-barcode.md).

Every read of every pass, tile, skewed copy and second opinion is grouped by the symbol it read. A group with
one value is a code; with several, a conflict. The rules here are deliberately biased towards grouping: two
codes wrongly put in one group come back as a conflict for a person to look at, while a misread wrongly put in a
group of its own would be reported as a code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from ._components import connected_components
from ._decoders import Read
from ._symbols import LINEAR

__all__ = ["family", "group_by_place", "without_itf_fragments"]

T = TypeVar("T")  # what the caller tags each read with (the pass that found it)
_SAME_SYMBOL = 0.5  # containment above which two full reads are of one symbol
_FULL_HEIGHT = 0.1  # a linear code's box this high (of its width) shows the whole bars, not one scan strip
_MIN_WIDTH = 8  # narrower than this, a linear read's box is a point, not an extent


def without_itf_fragments(group: list[tuple[Read, T]]) -> list[tuple[Read, T]]:
    """ITF has no mandatory check and no fixed length: a scan line crossing a tilted ITF symbol partly reads a
    valid shorter code (1234, 1234567890 of 12345678901231). An ITF value that is part of a longer ITF value
    read at the same place by at least two decoder calls is such a fragment, not a disagreement."""
    itf = [read for read, _ in group if read.symbology == "itf"]
    confirmed = {value for value in {read.value for read in itf} if sum(read.value == value for read in itf) >= 2}

    def fragment(read: Read) -> bool:
        return read.symbology == "itf" and any(read.value in longer and read.value != longer for longer in confirmed)

    return [(read, found_by) for read, found_by in group if not fragment(read)]


def group_by_place(reads: list[tuple[Read, T]]) -> list[list[tuple[Read, T]]]:
    """The reads of each symbol on the image, whatever order they came in.

    1. *Full* reads — every 2-D code read, and linear reads whose box shows the bars' height (upright, both
       decoders report a linear code's whole extent) — are one symbol where most of the smaller box lies inside
       the other (connected components).
    2. Every other read — a strip where one scan line crossed a tilted code, a single point (pyzbar), a part
       cut by a tile's edge — joins the symbol whose box it lies in, preferring one with its own value; a read
       inside a symbol with another value is a disagreement there (a conflict).
    3. Reads inside no full symbol (a tilted code has no full read) are one symbol when they overlap horizontally
       and lie within a fifth of their width of each other: a misread from a scan line through part of the bars
       lies beside the strip of the good reads, and is caught as a conflict rather than reported. Two tilted
       codes printed close together therefore come back as a conflict too: safe, and a person looks.
    """
    full = [seen for seen in reads if _is_full(seen[0])]
    partial = [seen for seen in reads if not _is_full(seen[0])]
    groups = _components(full, lambda a, b: family(a.symbology) == family(b.symbology)
                         and a.box.containment(b.box) >= _SAME_SYMBOL)  # fmt: skip
    unplaced: list[tuple[Read, T]] = []
    for read, found_by in partial:
        inside = [g for g in groups if any(_lies_in(read, other) for other, _ in g)]
        agreeing = [g for g in inside if any(other.value == read.value for other, _ in g)]
        candidates = agreeing or inside
        if candidates:
            candidates[0].append((read, found_by))
        else:
            unplaced.append((read, found_by))
    return groups + _components(unplaced, _near_strips)


def _components(reads: list[tuple[Read, T]], same: Callable[[Read, Read], bool]) -> list[list[tuple[Read, T]]]:
    return connected_components(reads, lambda a, b: same(a[0], b[0]))


def _is_full(read: Read) -> bool:
    box = read.box
    if family(read.symbology) != "linear":
        return True
    width = box.right - box.left
    return width >= _MIN_WIDTH and box.bottom - box.top >= _FULL_HEIGHT * width  # a point is no extent


def _lies_in(read: Read, symbol: Read) -> bool:
    """A strip or point read lies in a full read's box: across half its own width, and vertically within it."""
    if family(read.symbology) != family(symbol.symbology):
        return False
    box, area = read.box, symbol.box
    slack = 0.05 * (area.right - area.left) + 2
    overlap_x = min(box.right, area.right + slack) - max(box.left, area.left - slack)
    middle_y = (box.top + box.bottom) / 2
    return overlap_x >= 0.5 * max(1, box.right - box.left) and area.top - slack <= middle_y <= area.bottom + slack


def _near_strips(a: Read, b: Read) -> bool:
    if family(a.symbology) != family(b.symbology):
        return False
    if a.box.containment(b.box) >= _SAME_SYMBOL:
        return True
    overlap_x = min(a.box.right, b.box.right) - max(a.box.left, b.box.left)
    narrower = max(1, min(a.box.right - a.box.left, b.box.right - b.box.left))
    gap_y = max(a.box.top, b.box.top) - min(a.box.bottom, b.box.bottom)
    return overlap_x >= 0.5 * narrower and gap_y <= 0.2 * max(a.box.right - a.box.left, b.box.right - b.box.left)


def family(symbology: str) -> str:
    return "linear" if symbology in LINEAR else symbology
