"""A full local disk is an infrastructure problem (the storage lane pauses), not a per-file failure."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from integration.adapters.files import copy_with_crc
from integration.errors import StorageUnavailable


def test_enospc_becomes_storage_unavailable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ENOSPC while flushing the copy raises StorageUnavailable (lane 'storage') and leaves no partial file."""
    source = tmp_path / "a.tif"
    source.write_bytes(b"II*\x00" + b"x" * 10_000)

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(StorageUnavailable, match="local storage is full") as caught:
        copy_with_crc(source, tmp_path / "out" / "a.tif")
    assert caught.value.lane == "storage"
    assert not list((tmp_path / "out").glob("*"))
