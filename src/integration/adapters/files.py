"""Copying a file from the N-Drive into local storage while taking its CRC-32, streamed and verified.

Every function blocks: actors call them through ``trio.to_thread.run_sync`` under the copy capacity limiter.
Memory use is one chunk, whatever the size of the file. The CRC-32 is the unsigned ``zlib.crc32`` that ARS
compares against (``binascii.crc32`` gives the same value).

The two sides of a copy fail differently, and each ``OSError`` is translated by the side it happened on, in
one place each:

* the **N-Drive** (the source, :func:`_ndrive_errors`): its mount failing raises
  :class:`~integration.errors.NdriveUnavailable` (pause the intake lane); a source that vanished or changed
  raises :class:`CopyMismatch`; anything else :class:`~integration.errors.TransientError`.
* **local storage** (the destination, and every file :func:`crc32_of` and :func:`local_size` read,
  :func:`_local_errors`): a full or failing disk raises :class:`~integration.errors.StorageUnavailable` (pause
  the storage lane); something not ours in the way raises :class:`LocalPathBlocked`; anything else
  :class:`~integration.errors.TransientError`.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

import msgspec

from integration.adapters.ndrive import raise_if_mount_error
from integration.errors import DataError, StorageUnavailable, TransientError

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "CopyMismatch",
    "CopyResult",
    "LocalPathBlocked",
    "check_writable",
    "copy_with_crc",
    "crc32_of",
    "local_size",
]

#: Bytes read per step: large enough for throughput, small enough to keep memory flat.
DEFAULT_CHUNK_SIZE = 1 << 20

_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
_DISK_FAILING = frozenset({errno.EIO, errno.EROFS})
_IN_THE_WAY = frozenset({errno.EEXIST, errno.ENOTDIR, errno.EISDIR})


class CopyMismatch(TransientError):
    """A copy does not match its source: the source changed or vanished while being copied, or the bytes
    written differ.

    Nothing is left at the destination. Copy again once the source has settled; ``path`` is the file concerned.
    """

    def __init__(self, message: str, *, path: Path, guid: str | None = None) -> None:
        super().__init__(message, guid=guid)
        self.path = path


class LocalPathBlocked(TransientError):
    """Something this server did not put there stands where a local copy must go.

    For example ``<storage>/<guid>`` is a regular file where the asset's folder belongs. ``path`` is what is in
    the way; the message tells the data manager to move it. Retried with back-off until it is gone.
    """

    def __init__(self, message: str, *, path: Path, guid: str | None = None) -> None:
        super().__init__(message, guid=guid)
        self.path = path


class CopyResult(msgspec.Struct, frozen=True):
    """Size in bytes and unsigned CRC-32 of a file's content (and, for a copy, the source's mtime it had)."""

    size: int
    crc32: int
    mtime_ns: int | None = None


class _Source(Protocol):
    def readinto(self, buffer: bytearray, /) -> int | None: ...


class _Target(Protocol):
    def write(self, data: memoryview, /) -> object: ...


class _WritableFile(_Target, Protocol):
    def flush(self) -> None: ...
    def fileno(self) -> int: ...


#: A context manager factory translating ``OSError`` for one side of a copy.
_ErrorMap = Callable[[], contextlib.AbstractContextManager[None]]


def crc32_of(path: Path, *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> CopyResult:
    """Size and CRC-32 of the local file ``path``, read in chunks.

    Raises :class:`~integration.errors.StorageUnavailable` when the local disk fails (pause the storage lane),
    :class:`LocalPathBlocked` when something not ours is in the way, and
    :class:`~integration.errors.TransientError` for any other failure to read it.
    """
    with _local_errors(path), path.open("rb", buffering=0) as source:
        return _stream(source, None, chunk_size)


def local_size(path: Path) -> int:
    """The size of a local copy.

    Raises :class:`DataError` when the file is gone from its folder (someone removed our copy), and
    :class:`~integration.errors.StorageUnavailable` when its whole folder is gone — local storage unmounted or
    replaced, which every asset would meet; the caller confirms that with the storage lane's health probe
    (when the storage answers, only this asset's folder is gone). Other failures raise as :func:`crc32_of` does.
    """
    with _local_errors(path):
        try:
            return path.stat().st_size
        except FileNotFoundError as exc:
            if not path.parent.is_dir():
                raise StorageUnavailable(
                    f"the local copy's folder {path.parent} is gone: is local storage mounted? Assets wait; "
                    "nothing is lost (the originals are on the N-Drive)",
                    path=str(path.parent),
                    confirm=True,
                ) from exc
            raise DataError(f"the local copy {path} is gone; it must be copied from the N-Drive again") from exc


def check_writable(root: Path, *, probe_bytes: int = 1 << 20) -> None:
    """Write, fsync and remove a small file under ``root``: the storage lane's probe.

    Raises :class:`~integration.errors.StorageUnavailable` when the disk is still full or failing (or
    :class:`~integration.errors.TransientError` for another local problem); returns when a copy could succeed.
    """
    probe = root / ".integration-probe"
    with _local_errors(probe):
        root.mkdir(parents=True, exist_ok=True)
        try:
            with probe.open("wb") as handle:
                handle.write(b"\0" * probe_bytes)
                handle.flush()
                os.fsync(handle.fileno())
        finally:
            probe.unlink(missing_ok=True)


def copy_with_crc(src: Path, dst: Path, *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> CopyResult:
    """Copy ``src`` (on the N-Drive) to ``dst`` (in local storage) atomically; return its size and CRC-32
    (and the mtime ``src`` had while it was copied).

    The bytes go to ``<dst>.partial`` (parents created; a stray one from a crash is replaced), are fsynced and
    renamed to ``dst``; ``dst`` is then re-read and its size and CRC-32 compared. ``src`` is only read. On any
    failure nothing this call wrote is left behind. Raises:

    * :class:`CopyMismatch` when ``src`` vanished or changed during the copy (size, mtime, ctime or identity),
      or the re-read differs: copy again once the source has settled;
    * :class:`~integration.errors.NdriveUnavailable` when the N-Drive mount fails: pause the intake lane;
    * :class:`~integration.errors.StorageUnavailable` when local storage is full or failing: pause the storage
      lane;
    * :class:`LocalPathBlocked` when something not ours is where the copy must go: the data manager moves it;
    * :class:`~integration.errors.TransientError` for any other failure of either side: retry with back-off.
    """
    partial = dst.with_name(dst.name + ".partial")
    with _local_errors(dst.parent):
        dst.parent.mkdir(parents=True, exist_ok=True)
    replaced = verified = False
    try:
        result = _copy_to_partial(src, partial, chunk_size)
        with _local_errors(dst):
            os.replace(partial, dst)
            replaced = True
            _fsync_directory(dst.parent)
        _verify(dst, result, chunk_size)
        verified = True
    finally:
        _discard(partial)
        if replaced and not verified:
            _discard(dst)
    return result


def _copy_to_partial(src: Path, partial: Path, chunk_size: int) -> CopyResult:
    """Stream ``src`` into a fresh ``partial`` and fsync it; the source must not change meanwhile.

    The source's errors are translated per call (``read_errors``), so whatever ``OSError`` reaches the inner
    :func:`_local_errors` block comes from the destination.
    """
    with _ndrive_errors(src), src.open("rb", buffering=0) as source:
        before = os.fstat(source.fileno())
        with _local_errors(partial), _fresh(partial) as target:
            result = _stream(source, target, chunk_size, read_errors=functools.partial(_ndrive_errors, src))
            target.flush()
            os.fsync(target.fileno())
        _check_source_unchanged(src, before, result)
    return msgspec.structs.replace(result, mtime_ns=before.st_mtime_ns)


def _fresh(partial: Path) -> contextlib.AbstractContextManager[_WritableFile]:
    """Open a new, empty ``partial``: a stray one (read-only, a hard link or a symlink) is removed first."""
    partial.unlink(missing_ok=True)
    return partial.open("xb")


def _stream(
    source: _Source, target: _Target | None, chunk_size: int, *, read_errors: _ErrorMap = contextlib.nullcontext
) -> CopyResult:
    """Read ``source`` to its end in chunks, writing each to ``target`` (if any); return size and CRC-32.

    Each read runs inside ``read_errors()``: while copying, the source's failures are translated there, by the
    N-Drive's rules, before the destination's mapping around the whole loop could see them.
    """
    buffer = bytearray(chunk_size)
    view = memoryview(buffer)
    size = 0
    crc = 0
    while True:
        with read_errors():
            count = source.readinto(buffer)
        if not count:
            break
        chunk = view[:count]
        crc = zlib.crc32(chunk, crc)
        if target is not None:
            target.write(chunk)
        size += count
    return CopyResult(size=size, crc32=crc & 0xFFFFFFFF)


def _check_source_unchanged(src: Path, before: os.stat_result, result: CopyResult) -> None:
    """Raise :class:`CopyMismatch` when ``src`` is no longer the file, size, mtime and ctime that was copied.

    The ctime catches a rewrite that kept the size and put the mtime back.
    """
    after = os.stat(src)
    identity = (before.st_dev, before.st_ino, before.st_size, before.st_mtime_ns, before.st_ctime_ns)
    now = (after.st_dev, after.st_ino, after.st_size, after.st_mtime_ns, after.st_ctime_ns)
    if now != identity or result.size != before.st_size:
        raise CopyMismatch(
            f"{src} changed while it was being copied ({before.st_size} bytes at the start, {result.size} copied, "
            f"{after.st_size} now); copy it again once it has settled",
            path=src,
        )


def _verify(dst: Path, expected: CopyResult, chunk_size: int) -> None:
    """Re-read ``dst`` (from disk where the OS allows) and compare; raise :class:`CopyMismatch` on a difference."""
    with _local_errors(dst), dst.open("rb", buffering=0) as copy:
        _drop_cached_pages(copy.fileno())
        actual = _stream(copy, None, chunk_size)
    if (actual.size, actual.crc32) != (expected.size, expected.crc32):
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


def _discard(path: Path) -> None:
    """Remove our own leftover at ``path`` if there is one; a failure only leaves it for the next copy."""
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def _ndrive_errors(src: Path) -> Iterator[None]:
    """Translate ``OSError`` reading the source: mount failure, vanished source, or transient."""
    try:
        yield
    except OSError as exc:
        where = _where(exc, src)
        raise_if_mount_error(exc, where)
        if exc.errno == errno.ENOENT:
            raise CopyMismatch(
                f"{src} is gone from the N-Drive (moved or deleted while being imported); it is copied again "
                "once its session is planned again",
                path=src,
            ) from exc
        raise TransientError(f"the N-Drive file {where} cannot be read: {_why(exc)}") from exc


@contextlib.contextmanager
def _local_errors(path: Path) -> Iterator[None]:
    """Translate ``OSError`` in local storage: full or failing disk, something in the way, or transient."""
    try:
        yield
    except OSError as exc:
        where = _where(exc, path)
        if exc.errno in _DISK_FULL:
            raise StorageUnavailable(
                f"local storage is full: no space left for {where} ({_why(exc)}); free space on the storage disk, "
                "the copies resume by themselves",
                path=str(where),
            ) from exc
        if exc.errno in _DISK_FAILING:
            raise StorageUnavailable(
                f"local storage at {where} is failing ({_why(exc)}); check the storage disk, the copies resume by "
                "themselves once it works",
                path=str(where),
                confirm=True,  # one bad file is not yet a failing disk
            ) from exc
        blocker = _blocker(exc, path) if exc.errno in _IN_THE_WAY else None
        if blocker is not None:
            raise LocalPathBlocked(_blocked_message(blocker, path), path=blocker) from exc
        raise TransientError(f"file operation failed on {where}: {_why(exc)}") from exc


def _blocker(exc: OSError, path: Path) -> Path | None:
    """What stands in the way: a non-folder where a folder must be, or a folder where a file must be."""
    names = [Path(os.fsdecode(n)) for n in (exc.filename2, exc.filename) if isinstance(n, str | bytes)]
    for name in [*names, path]:
        if exc.errno == errno.EISDIR and os.path.isdir(name):
            return name
        for candidate in [*reversed(name.parents), name]:
            if os.path.lexists(candidate) and not os.path.isdir(candidate):
                return candidate
    return None


def _blocked_message(blocker: Path, path: Path) -> str:
    kind = "a folder" if os.path.isdir(blocker) else "a file"
    return (
        f"{blocker} is in the way of the local copy {path}: it is {kind} this server did not put there. Move it out "
        "of local storage (or delete it); the copy is tried again by itself"
    )


def _where(exc: OSError, default: Path) -> Path:
    return Path(os.fsdecode(exc.filename)) if isinstance(exc.filename, str | bytes) else default


def _why(exc: OSError) -> str:
    if exc.strerror:
        return exc.strerror
    return os.strerror(exc.errno) if exc.errno else str(exc) or type(exc).__name__
