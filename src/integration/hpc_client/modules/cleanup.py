"""The clean-up job's helper: remove a job's working files, and nothing else.

Only a directory strictly inside ``job_root`` is removed (resolved, so ``..`` and symlinks cannot lead out);
symlinks inside it are unlinked, never followed. A directory that is already gone counts as cleaned: the job can
run twice.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import msgspec

from integration.errors import ConfigError, NodeResourceError

__all__ = ["MODULE_VERSION", "Cleaned", "remove_job_files"]

MODULE_VERSION = "1.0.0"


class Cleaned(msgspec.Struct, frozen=True, kw_only=True):
    path: str
    files: int
    bytes: int
    existed: bool


def remove_job_files(work_dir: Path, *, job_root: Path) -> Cleaned:
    """Delete ``work_dir`` and everything under it; raises :class:`ConfigError` if it is not a directory inside
    ``job_root``, :class:`NodeResourceError` if the file system fails while removing."""
    root = job_root.resolve()
    target = work_dir.absolute()
    if target.is_symlink() or root not in target.resolve().parents:
        raise ConfigError(f"refusing to remove {work_dir}: it is not a directory inside the job root {root}")
    target = target.resolve()
    if not target.exists():
        return Cleaned(path=str(target), files=0, bytes=0, existed=False)
    if not target.is_dir():
        raise ConfigError(f"refusing to remove {work_dir}: it is a file, not a job's working directory")
    files = size = 0
    for dirpath, _, filenames in os.walk(target, followlinks=False):
        for name in filenames:
            path = Path(dirpath, name)
            with contextlib.suppress(OSError):  # counted for the report only
                size += 0 if path.is_symlink() else path.lstat().st_size
            files += 1
    failures: list[OSError] = []

    def on_error(function: object, path: str, exc_info: tuple[type[BaseException], BaseException, object]) -> None:
        error = exc_info[1]
        if not isinstance(error, FileNotFoundError):  # gone already (a concurrent clean-up): fine
            failures.append(error if isinstance(error, OSError) else OSError(str(error)))

    # rmtree works on file descriptors here (avoids_symlink_attacks): a directory swapped for a symlink while it
    # runs is unlinked, never followed out of the root. Errors are collected, and the result checked.
    shutil.rmtree(target, onerror=on_error)
    if target.exists() or failures:
        first = failures[0] if failures else OSError(f"{target} is still there")
        if isinstance(first, PermissionError):
            raise ConfigError(f"could not remove {target}: {first} (permissions: retrying will not help)")
        raise NodeResourceError(f"could not remove {target}: {first}")
    return Cleaned(path=str(target), files=files, bytes=size, existed=True)
