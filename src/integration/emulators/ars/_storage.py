"""On-disk file storage of the emulator: share folders, the ERDA mirror, and streamed uploads.

Layout under ``data_dir``: ``shares/{i}/{c}/{guid}/…`` (open shares), ``erda/{i}/{c}/{guid}/…`` (synced
files), ``tmp/`` (uploads in flight). All three sit on one file system, so committing an upload and syncing a
share are renames. Writes are small blocking calls on the local disk made from the event loop; a body is
never held in memory, only one chunk at a time.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import zlib
from pathlib import Path, PurePosixPath
from typing import BinaryIO

__all__ = ["Spool", "Storage", "safe_relative"]


def safe_relative(path: str) -> str | None:
    """``path`` normalised to ``a/b/c``, or None if it is empty or could leave its folder."""
    parts = PurePosixPath(path).parts
    if not parts or parts[0] == "/" or any(part in ("..", ".") or "\\" in part for part in parts):
        return None
    return "/".join(parts)


class Spool:
    """A temporary file that an upload streams into while its CRC-32 and size are computed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.crc = 0
        self.size = 0
        self._file: BinaryIO | None = path.open("wb")

    def write(self, chunk: bytes) -> None:
        """Append ``chunk`` and fold it into the CRC."""
        assert self._file is not None, "spool already closed"
        self._file.write(chunk)
        self.crc = zlib.crc32(chunk, self.crc)
        self.size += len(chunk)

    def commit(self, destination: Path) -> None:
        """Move the spooled bytes to ``destination`` (replacing any previous version)."""
        self._close()
        destination.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.path, destination)

    def discard(self) -> None:
        """Throw the spooled bytes away."""
        self._close()
        self.path.unlink(missing_ok=True)

    def _close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class Storage:
    """The folders of shares and of the ERDA mirror, and the file operations on them."""

    def __init__(self, data_dir: str) -> None:
        self.root = Path(data_dir) if data_dir else Path(tempfile.mkdtemp(prefix="ars-emulator-"))
        self.tmp = self.root / "tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)
        self._names = itertools.count()

    def share_dir(self, institution: str, collection: str, guid: str) -> Path:
        """Folder of the open share of ``guid``."""
        return self.root / "shares" / institution / collection / guid

    def erda_dir(self, institution: str, collection: str, guid: str) -> Path:
        """Folder of the synced (ERDA) files of ``guid``."""
        return self.root / "erda" / institution / collection / guid

    def open_spool(self) -> Spool:
        """A new temporary file for one upload."""
        return Spool(self.tmp / f"upload-{os.getpid()}-{next(self._names)}.part")

    @staticmethod
    def copy_files(source: Path, destination: Path, rels: list[str]) -> None:
        """Copy the files ``rels`` from ``source`` to ``destination`` (hard links where possible)."""
        for rel in rels:
            target = destination / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.unlink(missing_ok=True)
            try:
                os.link(source / rel, target)
            except OSError:
                shutil.copyfile(source / rel, target)

    @staticmethod
    def mirror(share: Path, erda: Path, keep: list[str], drop: list[str]) -> None:
        """Make ``erda`` a mirror of the files ``keep`` of ``share``: move them over, delete ``drop``."""
        for rel in keep:
            target = erda / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(share / rel, target)
        for rel in drop:
            (erda / rel).unlink(missing_ok=True)

    @staticmethod
    def delete_files(folder: Path, rels: list[str]) -> None:
        """Delete the files ``rels`` of ``folder`` (missing ones are fine)."""
        for rel in rels:
            (folder / rel).unlink(missing_ok=True)

    @staticmethod
    def remove(folder: Path) -> None:
        """Delete ``folder`` and everything in it, if it exists."""
        shutil.rmtree(folder, ignore_errors=True)
