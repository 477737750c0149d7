"""Replace a small file atomically: readers see the old bytes or the new ones, never half of them."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["write_atomically"]


def write_atomically(target: Path, data: bytes, *, mode: int = 0o666) -> None:
    """Write ``data`` to a hidden temporary file next to ``target``, fsync, then rename it over ``target``.

    ``mode`` (less the umask) applies from the file's creation: a secret is never readable by others, even for
    a moment.
    """
    temporary = target.with_name(f".{target.name}.tmp")
    temporary.unlink(missing_ok=True)
    try:
        with os.fdopen(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode), "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
