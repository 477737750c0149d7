"""copy_with_crc and crc32_of: streamed, verified copies whose CRC-32 equals zlib's."""

from __future__ import annotations

import io
import os
import tracemalloc
import zlib
from pathlib import Path
from typing import BinaryIO

import pytest

from integration.adapters import files
from integration.adapters.files import CopyMismatch, CopyResult, copy_with_crc, crc32_of
from integration.errors import TransientError


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
    assert result == CopyResult(size=len(data), crc32=zlib.crc32(data))
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

    def stream_then_append(src: io.FileIO, target: BinaryIO | None, chunk_size: int) -> CopyResult:
        result = original_stream(src, target, chunk_size)
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

    def stream_then_replace(src: io.FileIO, target: BinaryIO | None, chunk_size: int) -> CopyResult:
        result = original_stream(src, target, chunk_size)
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

    def corrupt_second_read(src: io.FileIO, target: BinaryIO | None, chunk_size: int) -> CopyResult:
        result = original_stream(src, target, chunk_size)
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
    expected = CopyResult(size=64 << 20, crc32=crc32_of(big).crc32)
    tracemalloc.start()
    try:
        result = copy_with_crc(big, tmp_path / "copy" / "big.tif")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result == expected
    assert peak < 4 * 1024 * 1024
