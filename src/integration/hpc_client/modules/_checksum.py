"""Size and CRC-32 of a file, read in 1 MiB chunks: the checksum ARS records (unsigned) and the nodes verify."""

from __future__ import annotations

import zlib
from pathlib import Path

__all__ = ["CHUNK", "size_and_crc32"]

CHUNK = 1 << 20


def size_and_crc32(path: Path) -> tuple[int, int]:
    crc, size = 0, 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            crc = zlib.crc32(chunk, crc)
            size += len(chunk)
    return size, crc & 0xFFFFFFFF
