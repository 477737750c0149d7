"""File work of finalising, run in a worker thread: the digitiser's report, then deleting the local copy and
the N-Drive copy of one asset (only ever called after ARS proved every file is in ERDA with our CRC-32)."""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

import msgspec

from integration.adapters._atomic import write_atomically

__all__ = ["Removed", "remove_asset_copies", "write_report"]


class Removed(msgspec.Struct, frozen=True, kw_only=True):
    local_files: int
    ndrive_files: int
    session_folder_removed: bool


def write_report(folder: Path, guid: str, text: str) -> Path:
    """Write ``<folder>/<guid>.txt`` atomically (the folder is made if needed); returns its path."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{guid}.txt"
    write_atomically(target, text.encode("utf-8"))
    return target


def remove_asset_copies(*, local_dir: Path, storage_root: Path, ndrive_files: Iterable[Path]) -> Removed:
    """Delete the asset's local folder (only inside ``storage_root``) and its files on the N-Drive, then the
    N-Drive session folder if that left it empty. Files already gone are fine (a repeated finalise)."""
    local_count = 0
    root = storage_root.resolve()
    target = local_dir.absolute()
    if target.exists():
        if root not in target.resolve().parents:
            raise ValueError(f"refusing to remove {local_dir}: not inside the storage root {root}")
        local_count = sum(len(files) for _, _, files in os.walk(target))
        shutil.rmtree(target)
    guid_dir = target.parent
    if guid_dir != root and root in guid_dir.resolve().parents:
        _remove_if_empty(guid_dir)  # <root>/<guid>/delivery-N: the asset's folder goes too when empty
    folders: set[Path] = set()
    ndrive_count = 0
    for path in ndrive_files:
        try:
            path.unlink()
            ndrive_count += 1
        except FileNotFoundError:
            pass
        folders.add(path.parent)
    removed = any(_remove_if_empty(folder) for folder in folders)
    return Removed(local_files=local_count, ndrive_files=ndrive_count, session_folder_removed=removed)


def _remove_if_empty(folder: Path) -> bool:
    try:
        folder.rmdir()
    except FileNotFoundError:
        return False
    except OSError as exc:
        if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
            return False
        raise
    return True
