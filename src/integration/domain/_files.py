"""File records: one row per file of an asset, with the CRC-32 taken while copying it in."""

from __future__ import annotations

import enum

import msgspec

__all__ = ["FileKind", "FileRecord", "allocation_mb", "size_mb"]

_MB = 1_000_000


class FileKind(enum.StrEnum):
    """What a file is to its asset."""

    IMAGE = "image"  # the converted image named by metadata file_format (tif)
    RAW = "raw"  # a raw sibling with the same stem (dng, cr3, raf, cr2)
    METADATA = "metadata"  # the <guid>.json


class FileRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A file of an asset: its name, size in bytes, unsigned CRC-32 and where the local copy lives.

    ``mtime_ns`` is the N-Drive file's modification time when it was copied (None when not known).
    """

    name: str
    kind: FileKind
    size: int
    crc32: int
    local_path: str
    mtime_ns: int | None = None

    @property
    def size_mb(self) -> int:
        """Size in ARS megabytes (10^6 bytes), rounded up, at least 1 (ARS refuses 0)."""
        return size_mb(self.size)


def size_mb(size: int) -> int:
    """Bytes to ARS megabytes, rounded up, at least 1."""
    return max(1, -(-size // _MB))


def allocation_mb(sizes: list[int], *, headroom_fraction: float, headroom_min_mb: int) -> int:
    """The share allocation for files of ``sizes`` bytes: per-file MB rounded up, plus headroom."""
    total = sum(size_mb(s) for s in sizes)
    headroom = max(headroom_min_mb, int(total * headroom_fraction + 0.999))
    return total + headroom
