"""What the watcher writes on the N-Drive: error notes next to rejected files, and the ``imported_`` rename.

These are the only changes this adapter makes there; an asset's own files are never modified or deleted.
"""

from __future__ import annotations

import itertools
import os
import textwrap
from datetime import UTC, datetime
from pathlib import Path

from integration.adapters.ndrive._errors import map_os_errors
from integration.adapters.ndrive._model import IntakeRejection
from integration.adapters.ndrive._names import note_file_name, printable

__all__ = ["mark_session_imported", "write_error_note"]

_IMPORTED_PREFIX = "imported_"
_STAMP_LABEL = "Noted at: "
_NOTE_WIDTH = 100
_MAX_NOTE_BYTES = 1 << 20  # an existing note larger than this is not ours to compare; it is replaced
_WHAT_TO_DO = (
    "What to do:\n"
    "  Follow the advice above. Files that need uploading again go into a new session folder.\n"
    "  The files listed here were left as they are. This note was written by the DaSSCo integration\n"
    "  server; delete it once the problem is solved.\n"
)


def write_error_note(session: Path, rejection: IntakeRejection) -> Path:
    """Write ``<session>/<name>.error.txt`` explaining ``rejection``, atomically, and return its path.

    The note holds the reason, the files concerned, the time it was first written and what to do. Writing the
    same rejection again leaves the existing note (and its time) as it is. Characters that are unsafe in a file
    name are replaced by ``_`` in the note's name. Raises :class:`~integration.errors.TransientError` when the
    session folder cannot be written.
    """
    note = session / note_file_name(rejection.name)
    with map_os_errors(note):
        if _same_note(note, rejection):
            return note
        _write_atomically(note, _render(rejection, noted_at=datetime.now(UTC)).encode("utf-8", "backslashreplace"))
    return note


def _render(rejection: IntakeRejection, *, noted_at: datetime) -> str:
    files = "".join(f"  - {printable(path.name)}\n" for path in rejection.paths) or "  (none)\n"
    guid = f"Asset GUID: {rejection.guid}\n" if rejection.guid else ""
    return (
        f"{printable(rejection.name)} was NOT imported into DaSSCo.\n\n"
        f"Why:\n{_wrap(rejection.reason)}\n\n"
        f"Files concerned (left unchanged in this folder):\n{files}\n"
        f"{guid}{_STAMP_LABEL}{noted_at.isoformat(timespec='seconds')}\n\n"
        f"{_WHAT_TO_DO}"
    )


def _wrap(text: str) -> str:
    return textwrap.fill(text, width=_NOTE_WIDTH, initial_indent="  ", subsequent_indent="  ", break_on_hyphens=False)


def _same_note(note: Path, rejection: IntakeRejection) -> bool:
    """True when ``note`` already says exactly this (its timestamp aside)."""
    try:
        if note.stat().st_size > _MAX_NOTE_BYTES:
            return False
        existing = note.read_bytes().decode("utf-8", "replace")
    except FileNotFoundError:
        return False
    expected = _render(rejection, noted_at=datetime.now(UTC)).encode("utf-8", "backslashreplace").decode()
    return _without_stamp(existing) == _without_stamp(expected)


def _without_stamp(text: str) -> list[str]:
    return [line for line in text.splitlines() if not line.startswith(_STAMP_LABEL)]


def _write_atomically(target: Path, data: bytes) -> None:
    """Write ``data`` to a hidden temporary file next to ``target``, fsync, then rename it over ``target``."""
    temporary = target.with_name(f".{target.name}.tmp")
    try:
        with temporary.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def mark_session_imported(session: Path) -> Path:
    """Rename ``session`` to ``imported_<name>`` in the same parent and return the new path.

    When that name is taken, ``imported_<name>_2``, ``_3``, ... is used. Raises
    :class:`~integration.errors.TransientError` when the rename fails (the folder is then unchanged).
    """
    with map_os_errors(session):
        target = _free_name(session.parent, _IMPORTED_PREFIX + session.name)
        session.rename(target)
    return target


def _free_name(parent: Path, name: str) -> Path:
    path = parent / name
    for number in itertools.count(2):
        if not os.path.lexists(path):
            break
        path = parent / f"{name}_{number}"
    return path
