"""The clean-up job's helper: remove a job's working files, and nothing else.

Only a directory strictly inside ``job_root`` is removed (resolved, so ``..`` and symlinks cannot lead out);
symlinks inside it are unlinked, never followed. A directory that is already gone counts as cleaned: the job can
run twice.
"""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

from integration.errors import ConfigError

__all__ = ["Cleaned", "remove_job_files"]


class Cleaned(msgspec.Struct, frozen=True, kw_only=True):
    path: str
    files: int
    bytes: int
    existed: bool


def remove_job_files(work_dir: Path, *, job_root: Path) -> Cleaned:
    """Delete ``work_dir`` and everything under it; raises :class:`ConfigError` if it is not inside ``job_root``."""
    root = job_root.resolve()
    target = work_dir.absolute()
    if target.is_symlink() or root not in target.resolve().parents:
        raise ConfigError(f"refusing to remove {work_dir}: it is not a directory inside the job root {root}")
    target = target.resolve()
    if not target.exists():
        return Cleaned(path=str(target), files=0, bytes=0, existed=False)
    files = size = 0
    for dirpath, dirnames, filenames in os.walk(target, topdown=False, followlinks=False):
        for name in filenames:
            path = Path(dirpath, name)
            if not path.is_symlink():
                size += path.stat().st_size
            path.unlink()
            files += 1
        for name in dirnames:
            path = Path(dirpath, name)
            if path.is_symlink():
                path.unlink()
            else:
                path.rmdir()
    target.rmdir()
    return Cleaned(path=str(target), files=files, bytes=size, existed=True)
