"""Copying a file into local storage while taking its CRC-32, streamed and verified.

Both functions block: actors call them through ``trio.to_thread.run_sync`` under the copy capacity
limiter. Memory use is one chunk, whatever the size of the file. The CRC-32 is the unsigned ``zlib.crc32``
that ARS compares against (``binascii.crc32`` gives the same value).

Every ``OSError`` becomes a :class:`~integration.errors.TransientError` naming the path, in
:func:`_map_os_errors` only.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import msgspec

from integration.errors import DataError, InfrastructureError, TransientError

__all__ = ["DEFAULT_CHUNK_SIZE", "CopyMismatch", "CopyResult", "copy_with_crc", "crc32_of", "local_size"]

#: Bytes read per step: large enough for throughput, small enough to keep memory flat.
DEFAULT_CHUNK_SIZE = 1 << 20


class CopyMismatch(TransientError):
    """A copy does not match its source: the source changed while being copied, or the bytes written differ.

    Nothing is left at the destination. Copy again once the source has settled; ``path`` is the source.
    """

    def __init__(self, message: str, *, path: Path, guid: str | None = None) -> None:
        super().__init__(message, guid=guid)
        self.path = path


class CopyResult(msgspec.Struct, frozen=True):
    """Size in bytes and unsigned CRC-32 of a file's content."""

    size: int
    crc32: int


def crc32_of(path: Path, *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> CopyResult:
    """Size and CRC-32 of ``path``, read in chunks; raises :class:`TransientError` when it cannot be read."""
    with _map_os_errors(path), path.open("rb", buffering=0) as source:
        return _stream(source, None, chunk_size)


def local_size(path: Path) -> int:
    """The size of a local copy; raises :class:`DataError` when it is gone (someone removed our copy)."""
    with _map_os_errors(path):
        try:
            return path.stat().st_size
        except FileNotFoundError as exc:
            raise DataError(f"the local copy {path} is gone; it must be copied from the N-Drive again") from exc


def copy_with_crc(src: Path, dst: Path, *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> CopyResult:
    """Copy ``src`` to ``dst`` atomically and return the size and CRC-32 of what was copied.

    The bytes go to ``<dst>.partial`` (parents created), are fsynced and renamed to ``dst``; ``dst`` is then
    re-read and its size and CRC-32 compared. Raises :class:`CopyMismatch` when ``src`` changed during the copy
    (size, mtime or identity) or the re-read differs, and :class:`TransientError` on any I/O failure; in both
    cases neither ``dst`` nor the ``.partial`` file is left behind. ``src`` is only read.
    """
    partial = dst.with_name(dst.name + ".partial")
    with _map_os_errors(dst):
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            result = _copy_to_partial(src, partial, chunk_size)
            os.replace(partial, dst)
        finally:
            partial.unlink(missing_ok=True)  # nothing to do after a successful rename
        _fsync_directory(dst.parent)
        _verify(dst, result, chunk_size)
    return result


def _copy_to_partial(src: Path, partial: Path, chunk_size: int) -> CopyResult:
    """Stream ``src`` into ``partial`` and fsync it; the source must not change meanwhile."""
    with src.open("rb", buffering=0) as source, partial.open("wb") as target:
        before = os.fstat(source.fileno())
        result = _stream(source, target, chunk_size)
        target.flush()
        os.fsync(target.fileno())
    _check_source_unchanged(src, before, result)
    return result


def _stream(source: io.FileIO, target: BinaryIO | None, chunk_size: int) -> CopyResult:
    """Read ``source`` to its end in chunks, writing each to ``target`` (if any); return size and CRC-32."""
    buffer = bytearray(chunk_size)
    view = memoryview(buffer)
    size = 0
    crc = 0
    while count := source.readinto(buffer):
        chunk = view[:count]
        crc = zlib.crc32(chunk, crc)
        if target is not None:
            target.write(chunk)
        size += count
    return CopyResult(size=size, crc32=crc & 0xFFFFFFFF)


def _check_source_unchanged(src: Path, before: os.stat_result, result: CopyResult) -> None:
    """Raise :class:`CopyMismatch` when ``src`` is no longer the file, size and mtime that was copied."""
    after = os.stat(src)
    identity = (before.st_dev, before.st_ino, before.st_size, before.st_mtime_ns)
    if (after.st_dev, after.st_ino, after.st_size, after.st_mtime_ns) != identity or result.size != before.st_size:
        raise CopyMismatch(
            f"{src} changed while it was being copied ({before.st_size} bytes at the start, {result.size} copied, "
            f"{after.st_size} now); copy it again once it has settled",
            path=src,
        )


def _verify(dst: Path, expected: CopyResult, chunk_size: int) -> None:
    """Re-read ``dst`` (from disk where the OS allows) and compare; remove it and raise on a difference."""
    with dst.open("rb", buffering=0) as copy:
        _drop_cached_pages(copy.fileno())
        actual = _stream(copy, None, chunk_size)
    if actual != expected:
        dst.unlink(missing_ok=True)
        raise CopyMismatch(
            f"the copy at {dst} reads back as {actual.size} bytes with CRC-32 {actual.crc32:08x}, "
            f"but {expected.size} bytes with CRC-32 {expected.crc32:08x} were written; the copy was removed",
            path=dst,
        )


def _drop_cached_pages(fd: int) -> None:
    """Ask the OS to forget its cached pages of ``fd`` so the verification reads what is on disk."""
    if hasattr(os, "posix_fadvise"):
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)


def _fsync_directory(directory: Path) -> None:
    """Make a rename inside ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


@contextlib.contextmanager
def _map_os_errors(path: Path) -> Iterator[None]:
    """Translate ``OSError``: a full disk pauses the storage lane; anything else is transient."""
    try:
        yield
    except OSError as exc:
        where = exc.filename if exc.filename is not None else path
        if exc.errno in _DISK_FULL:
            raise InfrastructureError(f"no space left for {where}: {exc.strerror}", lane="storage") from exc
        raise TransientError(f"file operation failed on {where}: {exc.strerror or exc}") from exc
