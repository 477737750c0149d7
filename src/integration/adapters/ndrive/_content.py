"""Reading what a file holds, defensively: its first bytes (is it what its name says?) and small JSON files."""

from __future__ import annotations

import os
from pathlib import Path

from integration.adapters.ndrive._errors import Rejected, file_problems_as_rejection
from integration.adapters.ndrive._names import printable

__all__ = ["MAX_METADATA_BYTES", "check_content", "read_small_file"]

#: A metadata JSON is a few kB; anything beyond this is not one (and is not read into memory).
MAX_METADATA_BYTES = 16 * 1024 * 1024

_TIFF = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")  # classic TIFF and BigTIFF, both byte orders
_JPEG = (b"\xff\xd8\xff",)
_PNG = (b"\x89PNG",)

#: Extension -> (format name for messages, accepted leading bytes). Other raw formats are not sniffed.
_SIGNATURES: dict[str, tuple[str, tuple[bytes, ...]]] = {
    "tif": ("TIFF", _TIFF),
    "tiff": ("TIFF", _TIFF),
    "dng": ("DNG (TIFF-based)", _TIFF),
    "jpg": ("JPEG", _JPEG),
    "jpeg": ("JPEG", _JPEG),
    "png": ("PNG", _PNG),
}
_HEAD_BYTES = 8


def check_content(path: Path, extension: str, size: int) -> None:
    """Raise :class:`Rejected` when the file is empty or its first bytes do not match ``extension``."""
    name = printable(path.name)
    if size == 0:
        raise Rejected(
            f"{name} is empty (0 bytes). Export the file again on the workstation and upload the asset again in "
            "a new session folder."
        )
    signature = _SIGNATURES.get(extension.lower())
    if signature is None:
        return
    format_name, accepted = signature
    head = _read_head(path, _HEAD_BYTES)
    if not head.startswith(accepted):
        raise Rejected(
            f"{name} is not a {format_name} file although its name and the metadata's file_format say so "
            f"(it starts with bytes {head[:4].hex(' ') or 'none'}). Check that the right file was exported, or "
            "correct file_format in the metadata, and upload the asset again in a new session folder."
        )


def read_small_file(path: Path, limit: int) -> bytes:
    """The whole content of ``path`` when it has at most ``limit`` bytes; raises :class:`Rejected` otherwise."""
    data = _read_head(path, limit + 1)
    if len(data) > limit:
        raise Rejected(
            f"{printable(path.name)} is larger than {limit // (1024 * 1024)} MB, which no metadata file is. "
            "Check that the right file was named .json and upload the asset again in a new session folder."
        )
    return data


def _read_head(path: Path, count: int) -> bytes:
    """Up to ``count`` leading bytes; O_NONBLOCK so a file swapped for a pipe cannot hang the watcher."""
    with file_problems_as_rejection(path):
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        try:
            return _read_up_to(fd, count)
        finally:
            os.close(fd)


def _read_up_to(fd: int, count: int) -> bytes:
    parts: list[bytes] = []
    remaining = count
    while remaining > 0 and (part := os.read(fd, min(remaining, 1 << 20))):
        parts.append(part)
        remaining -= len(part)
    return b"".join(parts)
