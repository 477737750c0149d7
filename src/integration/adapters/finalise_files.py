"""File work of finalising, run in a worker thread: the digitiser's report, then deleting the local copy and
the N-Drive copy of one asset (only ever called after ARS proved every file is in ERDA with our CRC-32)."""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from integration.adapters._atomic import write_atomically
from integration.errors import DataError

__all__ = ["remove_local_copy", "remove_ndrive_copies", "write_report"]


def write_report(folder: Path, guid: str, text: str) -> Path:
    """Write ``<folder>/<guid>.txt`` atomically (the folder is made if needed); returns its path."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{guid}.txt"
    write_atomically(target, text.encode("utf-8"))
    return target


def remove_local_copy(local_dir: Path, *, storage_root: Path) -> int:
    """Delete the asset's local folder (only inside ``storage_root``), and its ``<root>/<guid>`` folder once
    empty; returns how many files went. A folder already gone is fine (a repeated finalise)."""
    root = storage_root.resolve()
    target = local_dir.absolute()
    if target.exists() and root not in target.resolve().parents:
        raise DataError(f"refusing to remove {local_dir}: not inside the storage root {root}")
    count = 0
    if target.exists():
        count = sum(len(files) for _, _, files in os.walk(target))
        shutil.rmtree(target)
    guid_dir = target.parent
    if guid_dir != root and root in guid_dir.resolve().parents:
        _remove_if_empty(guid_dir)  # <root>/<guid>/delivery-N: the asset's folder goes too when empty
    return count


def remove_ndrive_copies(files: Iterable[Path]) -> tuple[int, bool]:
    """Delete the asset's files on the N-Drive, then each session folder that left empty; returns (files
    deleted, whether a folder was removed). Files already gone are fine."""
    folders: set[Path] = set()
    count = 0
    for path in files:
        try:
            path.unlink()
            count += 1
        except FileNotFoundError:
            pass
        folders.add(path.parent)
    removed = [_remove_if_empty(folder) for folder in sorted(folders)]  # every folder, not the first only
    return count, any(removed)


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
