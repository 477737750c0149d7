"""copy_with_crc and crc32_of: streamed, verified copies whose CRC-32 equals zlib's."""

from __future__ import annotations

import errno
import os
import tracemalloc
import zlib
from pathlib import Path
from typing import Any

import pytest

from integration.adapters import files
from integration.adapters.files import CopyMismatch, CopyResult, LocalPathBlocked, copy_with_crc, crc32_of, local_size
from integration.errors import DataError, NdriveUnavailable, StorageUnavailable, TransientError


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A 100 kB source file with varied bytes."""
    path = tmp_path / "ndrive" / "asset.tif"
    path.parent.mkdir()
    path.write_bytes(os.urandom(100_000))
    return path


def test_copy_crc_equals_zlib_over_many_chunks(source: Path, tmp_path: Path) -> None:
    """With a small chunk size the streamed CRC-32 equals zlib.crc32 of the whole file, and the bytes match."""
    dst = tmp_path / "local" / "deep" / "asset.tif"
    result = copy_with_crc(source, dst, chunk_size=4096)
    data = source.read_bytes()
    assert result == CopyResult(size=len(data), crc32=zlib.crc32(data), mtime_ns=source.stat().st_mtime_ns)
    assert dst.read_bytes() == data
    assert not dst.with_name("asset.tif.partial").exists()


def test_crc32_of_matches_zlib_and_handles_empty_files(source: Path, tmp_path: Path) -> None:
    """crc32_of gives zlib's unsigned CRC-32 and size; an empty file is (0, 0)."""
    assert crc32_of(source, chunk_size=1000) == CopyResult(size=100_000, crc32=zlib.crc32(source.read_bytes()))
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert crc32_of(empty) == CopyResult(size=0, crc32=0)


def test_copy_replaces_an_existing_destination(source: Path, tmp_path: Path) -> None:
    """A stale destination (and a stale .partial from a crash) is replaced by the new copy."""
    dst = tmp_path / "asset.tif"
    dst.write_bytes(b"old")
    dst.with_name("asset.tif.partial").write_bytes(b"crashed half copy")
    copy_with_crc(source, dst)
    assert dst.read_bytes() == source.read_bytes()
    assert not dst.with_name("asset.tif.partial").exists()


def test_source_changing_during_the_copy_raises_and_leaves_nothing(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the source grows while it is copied, CopyMismatch is raised and no destination is left."""
    original_stream = files._stream

    def stream_then_append(src: Any, target: Any, chunk_size: int, **options: Any) -> CopyResult:
        result = original_stream(src, target, chunk_size, **options)
        with source.open("ab") as handle:
            handle.write(b"late bytes")
        return result

    monkeypatch.setattr(files, "_stream", stream_then_append)
    dst = tmp_path / "local" / "asset.tif"
    with pytest.raises(CopyMismatch, match="changed while it was being copied") as caught:
        copy_with_crc(source, dst)
    assert caught.value.path == source
    assert list(dst.parent.iterdir()) == []


def test_source_replaced_during_the_copy_raises(source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """If the source is swapped for another file of the same size, CopyMismatch is raised."""
    original_stream = files._stream

    def stream_then_replace(src: Any, target: Any, chunk_size: int, **options: Any) -> CopyResult:
        result = original_stream(src, target, chunk_size, **options)
        replacement = source.with_name("replacement")
        replacement.write_bytes(b"y" * 100_000)
        os.replace(replacement, source)
        return result

    monkeypatch.setattr(files, "_stream", stream_then_replace)
    with pytest.raises(CopyMismatch):
        copy_with_crc(source, tmp_path / "asset.tif")
    assert not (tmp_path / "asset.tif").exists()


def test_copy_that_reads_back_differently_is_removed(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When re-reading the destination disagrees with what was written, it is deleted and CopyMismatch raised."""
    original_stream = files._stream
    calls: list[int] = []

    def corrupt_second_read(src: Any, target: Any, chunk_size: int, **options: Any) -> CopyResult:
        result = original_stream(src, target, chunk_size, **options)
        calls.append(1)
        return result if len(calls) == 1 else CopyResult(size=result.size, crc32=result.crc32 ^ 1)

    monkeypatch.setattr(files, "_stream", corrupt_second_read)
    dst = tmp_path / "asset.tif"
    with pytest.raises(CopyMismatch, match="reads back"):
        copy_with_crc(source, dst)
    assert not dst.exists()


def test_missing_source_raises_transient_naming_the_path(tmp_path: Path) -> None:
    """An OSError becomes TransientError whose message names the file."""
    missing = tmp_path / "missing.tif"
    with pytest.raises(TransientError, match=r"missing\.tif"):
        copy_with_crc(missing, tmp_path / "out" / "copy.tif")
    assert not (tmp_path / "out" / "copy.tif.partial").exists()
    with pytest.raises(TransientError, match=r"missing\.tif"):
        crc32_of(missing)


def test_copy_memory_stays_flat_for_a_large_file(tmp_path: Path) -> None:
    """Copying 64 MB allocates at most a few MB of Python memory (the file is never held whole)."""
    big = tmp_path / "big.tif"
    block = os.urandom(1 << 20)
    with big.open("wb") as handle:
        for _ in range(64):
            handle.write(block)
    expected = CopyResult(size=64 << 20, crc32=crc32_of(big).crc32, mtime_ns=big.stat().st_mtime_ns)
    tracemalloc.start()
    try:
        result = copy_with_crc(big, tmp_path / "copy" / "big.tif")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result == expected
    assert peak < 4 * 1024 * 1024


class _Reader:
    """Wraps the source file of a copy; ``after_first_chunk`` runs once, after the first chunk was read."""

    def __init__(self, inner: Any, after_first_chunk: Any) -> None:
        self.inner = inner
        self.after_first_chunk = after_first_chunk
        self.chunks = 0

    def readinto(self, buffer: bytearray) -> int | None:
        count: int | None = self.inner.readinto(buffer)
        self.chunks += 1
        if self.chunks == 1:
            self.after_first_chunk()
        return count


def _hook_source_reads(monkeypatch: pytest.MonkeyPatch, after_first_chunk: Any) -> None:
    """Make the copy's source reads (not the verification) call ``after_first_chunk`` once, mid-copy."""
    original_stream = files._stream

    def hooked(src: Any, target: Any, chunk_size: int, **options: Any) -> CopyResult:
        if target is not None:
            src = _Reader(src, after_first_chunk)
        return original_stream(src, target, chunk_size, **options)

    monkeypatch.setattr(files, "_stream", hooked)


def test_source_rewritten_in_place_mid_copy_raises_and_leaves_nothing(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A same-size rewrite of the source during the copy raises CopyMismatch; nothing is left at the destination."""
    os.utime(source, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000))

    def rewrite() -> None:
        with source.open("r+b") as handle:
            handle.write(b"\x00" * 100_000)

    _hook_source_reads(monkeypatch, rewrite)
    dst = tmp_path / "local" / "asset.tif"
    with pytest.raises(CopyMismatch, match="changed while it was being copied") as caught:
        copy_with_crc(source, dst, chunk_size=4096)
    assert caught.value.path == source
    assert list(dst.parent.iterdir()) == []


def test_source_rewritten_with_its_mtime_put_back_is_caught_by_ctime(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rewrite that restores size and mtime still changes the ctime, which the copy compares too."""
    before = source.stat()

    def rewrite_until_the_clock_shows_it() -> None:
        for _ in range(1_000_000):  # file timestamps are coarse: repeat until the ctime tick has passed
            with source.open("r+b") as handle:
                handle.write(b"\x00" * 100_000)
            os.utime(source, ns=(before.st_atime_ns, before.st_mtime_ns))
            if source.stat().st_ctime_ns != before.st_ctime_ns:
                return
        pytest.fail("the file system's ctime never changed")

    _hook_source_reads(monkeypatch, rewrite_until_the_clock_shows_it)
    dst = tmp_path / "local" / "asset.tif"
    with pytest.raises(CopyMismatch, match="changed while it was being copied"):
        copy_with_crc(source, dst, chunk_size=4096)
    assert source.stat().st_mtime_ns == before.st_mtime_ns
    assert list(dst.parent.iterdir()) == []


def test_source_deleted_mid_copy_raises_copy_mismatch(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A source that vanishes while being copied raises CopyMismatch (a TransientError) and leaves nothing."""
    _hook_source_reads(monkeypatch, source.unlink)
    dst = tmp_path / "local" / "asset.tif"
    with pytest.raises(CopyMismatch, match="is gone from the N-Drive") as caught:
        copy_with_crc(source, dst, chunk_size=4096)
    assert caught.value.path == source
    assert list(dst.parent.iterdir()) == []


@pytest.mark.parametrize("code", [errno.EIO, errno.ESTALE, errno.ENOTCONN, errno.ETIMEDOUT])
def test_mount_error_reading_the_source_raises_ndrive_unavailable(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    """EIO (or another mount errno) reading the N-Drive file pauses the intake lane, not the storage lane."""

    def fail() -> None:
        raise OSError(code, os.strerror(code))

    _hook_source_reads(monkeypatch, fail)
    dst = tmp_path / "local" / "asset.tif"
    with pytest.raises(NdriveUnavailable) as caught:
        copy_with_crc(source, dst, chunk_size=4096)
    assert caught.value.lane == "intake"
    assert caught.value.path == str(source)
    assert list(dst.parent.iterdir()) == []


def test_other_error_reading_the_source_is_transient(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A source read failing for another reason (EACCES) is a plain TransientError naming the N-Drive file."""

    def fail() -> None:
        raise OSError(errno.EACCES, os.strerror(errno.EACCES))

    _hook_source_reads(monkeypatch, fail)
    with pytest.raises(TransientError, match=r"the N-Drive file .*asset\.tif cannot be read") as caught:
        copy_with_crc(source, tmp_path / "local" / "asset.tif", chunk_size=4096)
    assert type(caught.value) is TransientError


@pytest.mark.parametrize("code", [errno.EIO, errno.EROFS, errno.ENOSPC, errno.EDQUOT])
def test_destination_failing_raises_storage_unavailable(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    """EIO/EROFS/ENOSPC/EDQUOT writing local storage pause the storage lane and leave no partial file."""
    dst = tmp_path / "local" / "asset.tif"
    original_stream = files._stream

    def failing_write(src: Any, target: Any, chunk_size: int, **options: Any) -> CopyResult:
        if target is not None:
            raise OSError(code, os.strerror(code))
        return original_stream(src, target, chunk_size, **options)

    monkeypatch.setattr(files, "_stream", failing_write)
    with pytest.raises(StorageUnavailable) as caught:
        copy_with_crc(source, dst)
    assert caught.value.lane == "storage"
    assert list(dst.parent.iterdir()) == []


def test_stray_file_where_the_asset_folder_belongs_raises_local_path_blocked(source: Path, tmp_path: Path) -> None:
    """A regular file at storage/<guid> blocks the copy: LocalPathBlocked names it and says to move it."""
    blocker = tmp_path / "storage" / "GUID"
    blocker.parent.mkdir()
    blocker.write_text("someone's file")
    with pytest.raises(LocalPathBlocked, match=r"is a file this server did not put there\. Move it") as caught:
        copy_with_crc(source, blocker / "asset.tif")
    assert caught.value.path == blocker
    assert isinstance(caught.value, TransientError)
    assert blocker.read_text() == "someone's file"


def test_stray_file_higher_up_raises_local_path_blocked(source: Path, tmp_path: Path) -> None:
    """A regular file where a grand-parent folder belongs is found and named too."""
    blocker = tmp_path / "storage"
    blocker.write_text("not a folder")
    with pytest.raises(LocalPathBlocked) as caught:
        copy_with_crc(source, blocker / "GUID" / "asset.tif")
    assert caught.value.path == blocker


def test_folder_where_the_copy_belongs_raises_local_path_blocked(source: Path, tmp_path: Path) -> None:
    """A folder at the destination's own path is in the way too, and is left as it is."""
    dst = tmp_path / "storage" / "asset.tif"
    (dst / "inside").mkdir(parents=True)
    with pytest.raises(LocalPathBlocked, match="is a folder") as caught:
        copy_with_crc(source, dst)
    assert caught.value.path == dst
    assert (dst / "inside").is_dir()
    assert not dst.with_name("asset.tif.partial").exists()


def test_stray_partial_that_is_read_only_or_a_link_is_replaced_not_followed(source: Path, tmp_path: Path) -> None:
    """A .partial left by a crash is removed first: a read-only one is replaced and a symlink is not written through."""
    elsewhere = tmp_path / "elsewhere.bin"
    elsewhere.write_bytes(b"must not change")
    dst = tmp_path / "storage" / "asset.tif"
    dst.parent.mkdir()
    partial = dst.with_name("asset.tif.partial")
    partial.symlink_to(elsewhere)
    copy_with_crc(source, dst)
    assert elsewhere.read_bytes() == b"must not change"
    assert dst.read_bytes() == source.read_bytes()
    partial.write_bytes(b"crashed")
    partial.chmod(0o444)
    copy_with_crc(source, dst)
    assert not partial.exists()


def test_failing_storage_on_re_read_removes_the_unverified_copy(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EIO while verifying the copy raises StorageUnavailable and removes the copy that could not be verified."""
    original_stream = files._stream

    def failing_verify(src: Any, target: Any, chunk_size: int, **options: Any) -> CopyResult:
        if target is None:
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        return original_stream(src, target, chunk_size, **options)

    monkeypatch.setattr(files, "_stream", failing_verify)
    dst = tmp_path / "local" / "asset.tif"
    with pytest.raises(StorageUnavailable, match=r"local storage at .* is failing"):
        copy_with_crc(source, dst)
    assert list(dst.parent.iterdir()) == []


def test_local_side_of_crc32_of_and_local_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """crc32_of and local_size map EIO to StorageUnavailable; a vanished copy stays a DataError for local_size."""
    copy = tmp_path / "copy.tif"
    copy.write_bytes(b"abc")
    with pytest.raises(DataError, match="is gone"):
        local_size(tmp_path / "gone.tif")

    def failing_stat(self: Path, **options: Any) -> os.stat_result:
        raise OSError(errno.EIO, os.strerror(errno.EIO), str(self))

    monkeypatch.setattr(Path, "stat", failing_stat)
    with pytest.raises(StorageUnavailable):
        local_size(copy)
    monkeypatch.undo()

    def failing_read(src: Any, target: Any, chunk_size: int, **options: Any) -> CopyResult:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(files, "_stream", failing_read)
    with pytest.raises(StorageUnavailable) as caught:
        crc32_of(copy)
    assert caught.value.path == str(copy)
