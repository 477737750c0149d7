"""The notes the watcher leaves on the N-Drive: next to rejected files, and about a whole session folder.

Notes (and the ``imported_`` rename, in ``_rename``) are the only changes this adapter makes there; an asset's
own files are never modified or deleted.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from integration.adapters._atomic import write_atomically
from integration.adapters.ndrive._errors import map_os_errors
from integration.adapters.ndrive._model import IntakeRejection
from integration.adapters.ndrive._names import SESSION_NOTE_NAME, note_file_name, printable

__all__ = ["write_error_note", "write_session_note"]

_STAMP_LABEL = "Noted at: "
_NOTE_WIDTH = 100
_MAX_NOTE_BYTES = 1 << 20  # an existing note larger than this is not ours to compare; it is replaced
_WHAT_TO_DO = (
    "What to do:\n"
    "  Follow the advice above. Files that need uploading again go into a new session folder.\n"
    "  The files listed here were left as they are. This note was written by the DaSSCo integration\n"
    "  server; delete it once the problem is solved.\n"
)

#: Renders a note's text for the time it is written.
_Render = Callable[[datetime], str]


def write_error_note(session: Path, rejection: IntakeRejection) -> Path:
    """Write ``<session>/<name>.error.txt`` explaining ``rejection``, atomically, and return its path.

    The note holds the reason, the files concerned, the time it was first written and what to do. Writing the
    same rejection again leaves the existing note (and its time) as it is. Characters that are unsafe in a file
    name are replaced by ``_`` in the note's name. Raises :class:`~integration.errors.TransientError` when the
    session folder cannot be written, :class:`~integration.errors.NdriveUnavailable` when the mount fails.
    """
    files = "".join(f"  - {printable(path.name)}\n" for path in rejection.paths) or "  (none)\n"
    guid = f"Asset GUID: {rejection.guid}\n" if rejection.guid else ""

    def render(noted_at: datetime) -> str:
        return _render(
            f"{printable(rejection.name)} was NOT imported into DaSSCo.", rejection.reason, files, guid, noted_at
        )

    return _write_note(session / note_file_name(rejection.name), render)


def write_session_note(session: Path, reason: str) -> Path:
    """Write ``<session>/_session.error.txt`` saying why the folder as a whole was not imported; return its path.

    For a plan with a ``folder_problem``. Written like :func:`write_error_note` (atomically; the same reason
    again leaves the note as it is); no asset's note ever has this name. Raises
    :class:`~integration.errors.TransientError` when the folder cannot be written,
    :class:`~integration.errors.NdriveUnavailable` when the mount fails.
    """
    title = f"The session folder {printable(session.name)} was NOT imported into DaSSCo."

    def render(noted_at: datetime) -> str:
        return _render(title, reason, "  (every file in this folder)\n", "", noted_at)

    return _write_note(session / SESSION_NOTE_NAME, render)


def _write_note(note: Path, render: _Render) -> Path:
    with map_os_errors(note):
        if _same_note(note, render):
            return note
        write_atomically(note, _encode(render(datetime.now(UTC))))
    return note


def _render(title: str, reason: str, files: str, guid: str, noted_at: datetime) -> str:
    return (
        f"{title}\n\n"
        f"Why:\n{_wrap(reason)}\n\n"
        f"Files concerned (left unchanged in this folder):\n{files}\n"
        f"{guid}{_STAMP_LABEL}{noted_at.isoformat(timespec='seconds')}\n\n"
        f"{_WHAT_TO_DO}"
    )


def _wrap(text: str) -> str:
    return textwrap.fill(text, width=_NOTE_WIDTH, initial_indent="  ", subsequent_indent="  ", break_on_hyphens=False)


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "backslashreplace")


def _same_note(note: Path, render: _Render) -> bool:
    """True when ``note`` already says exactly this (its timestamp aside)."""
    try:
        if note.stat().st_size > _MAX_NOTE_BYTES:
            return False
        existing = note.read_bytes().decode("utf-8", "replace")
    except FileNotFoundError:
        return False
    expected = _encode(render(datetime.now(UTC))).decode()
    return _without_stamp(existing) == _without_stamp(expected)


def _without_stamp(text: str) -> list[str]:
    return [line for line in text.splitlines() if not line.startswith(_STAMP_LABEL)]
