"""write_error_note, write_session_note and mark_session_imported: the only changes made on the N-Drive."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from integration.adapters.ndrive import (
    SESSION_NOTE_NAME,
    IntakeRejection,
    mark_session_imported,
    snapshot_session,
    write_error_note,
    write_session_note,
)
from integration.errors import NdriveUnavailable, TransientError

GUID = "7e8-8-08-0c-1b-15-2-003-04-000-01e240"


@pytest.fixture
def session(tmp_path: Path) -> Path:
    """A session folder with one asset's image."""
    folder = tmp_path / "WORKHERB0001" / "20240517_session"
    folder.mkdir(parents=True)
    (folder / f"{GUID}.tif").write_bytes(b"II*\x00")
    return folder


def rejection(session: Path, reason: str = "No metadata file was found. Upload it again.") -> IntakeRejection:
    """A rejection of the asset GUID in ``session``."""
    return IntakeRejection(name=GUID, reason=reason, paths=(session / f"{GUID}.tif",), guid=GUID)


def test_note_explains_reason_files_time_and_what_to_do(session: Path) -> None:
    """The note sits at ``<name>.error.txt`` and holds the reason, the files, a timestamp and advice."""
    note = write_error_note(session, rejection(session))
    assert note == session / f"{GUID}.error.txt"
    text = note.read_text(encoding="utf-8")
    assert "No metadata file was found" in text
    assert f"  - {GUID}.tif" in text
    assert f"Asset GUID: {GUID}" in text
    assert "Noted at: 20" in text
    assert "What to do:" in text
    assert not [p for p in session.iterdir() if p.name.endswith(".tmp")]


def test_same_note_twice_leaves_the_first_untouched(session: Path) -> None:
    """Writing the same rejection again keeps the existing note and its time."""
    note = write_error_note(session, rejection(session))
    os.utime(note, ns=(1_000_000_000, 1_000_000_000))
    first = note.read_bytes()
    assert write_error_note(session, rejection(session)) == note
    assert note.read_bytes() == first
    assert note.stat().st_mtime_ns == 1_000_000_000


def test_changed_reason_replaces_the_note(session: Path) -> None:
    """A different reason rewrites the note."""
    note = write_error_note(session, rejection(session))
    write_error_note(session, rejection(session, reason="The image is empty (0 bytes)."))
    text = note.read_text(encoding="utf-8")
    assert "The image is empty" in text
    assert "No metadata file" not in text


def test_note_name_of_an_unsafe_file_name_is_made_safe(session: Path) -> None:
    """Control characters and backslashes in the rejected name are replaced in the note's file name."""
    name = "bell\x07back\\slash.tif"
    (session / name).write_bytes(b"x")
    note = write_error_note(session, IntakeRejection(name=name, reason="bad name", paths=(session / name,), guid=None))
    assert note.name == "bell_back_slash.tif.error.txt"
    assert "bell\\x07back\\\\slash.tif" in note.read_text(encoding="utf-8")


def test_note_in_missing_session_raises_transient(tmp_path: Path) -> None:
    """A session folder that cannot be written raises TransientError."""
    with pytest.raises(TransientError):
        write_error_note(tmp_path / "gone", IntakeRejection(name="x", reason="r", paths=(), guid=None))


def test_mark_session_imported_renames_in_place(session: Path) -> None:
    """The session becomes ``imported_<name>`` next to where it was, with its files unchanged."""
    new = mark_session_imported(session)
    assert new == session.parent / "imported_20240517_session"
    assert not session.exists()
    assert (new / f"{GUID}.tif").read_bytes() == b"II*\x00"


def test_mark_session_imported_adds_a_suffix_on_a_name_clash(session: Path) -> None:
    """When ``imported_<name>`` exists (even as an empty folder) a numeric suffix is added."""
    (session.parent / "imported_20240517_session").mkdir()
    (session.parent / "imported_20240517_session_2").write_text("a file")
    new = mark_session_imported(session)
    assert new == session.parent / "imported_20240517_session_3"
    assert (new / f"{GUID}.tif").exists()
    assert not any((session.parent / "imported_20240517_session").iterdir())


def test_mark_missing_session_raises_transient(tmp_path: Path) -> None:
    """Renaming a session folder that is gone raises TransientError."""
    with pytest.raises(TransientError):
        mark_session_imported(tmp_path / "gone")


def test_session_note_explains_why_the_folder_was_not_imported(session: Path) -> None:
    """write_session_note writes _session.error.txt with the title, the reason, a timestamp and advice."""
    note = write_session_note(session, "The session folder could not be examined: a bug.")
    assert note == session / "_session.error.txt" == session / SESSION_NOTE_NAME
    text = note.read_text(encoding="utf-8")
    assert text.startswith("The session folder 20240517_session was NOT imported into DaSSCo.\n\nWhy:\n")
    assert "could not be examined: a bug." in text
    assert "(every file in this folder)" in text
    assert "Noted at: 20" in text
    assert "What to do:" in text
    assert not [p for p in session.iterdir() if p.name.endswith(".tmp")]


def test_same_session_note_twice_leaves_the_first_untouched(session: Path) -> None:
    """Writing the same folder reason again keeps the existing note and its time; a new reason replaces it."""
    note = write_session_note(session, "first reason")
    os.utime(note, ns=(1_000_000_000, 1_000_000_000))
    write_session_note(session, "first reason")
    assert note.stat().st_mtime_ns == 1_000_000_000
    write_session_note(session, "second reason")
    assert "second reason" in note.read_text(encoding="utf-8")


def test_session_note_does_not_change_the_snapshot(session: Path) -> None:
    """The session note is one of our notes: writing it does not restart the settle wait."""
    before = snapshot_session(session)
    write_session_note(session, "a reason")
    assert snapshot_session(session) == before


@pytest.mark.parametrize("name", ["_session", "_SESSION", "._session"])
def test_a_file_named_like_the_session_note_gets_another_note_name(session: Path, name: str) -> None:
    """A rejected file called _session (in any case) never gets the session's own note name."""
    (session / name).write_text("stray")
    note = write_error_note(session, IntakeRejection(name=name, reason="stray", paths=(session / name,), guid=None))
    assert note.name.lower() != SESSION_NOTE_NAME
    write_session_note(session, "the folder's reason")
    assert "stray" in note.read_text(encoding="utf-8")


def test_note_on_a_failing_mount_raises_ndrive_unavailable(session: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """EIO while writing a note pauses the intake lane instead of counting as this folder's problem."""

    def failing_fsync(fd: int) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(NdriveUnavailable, match="check the mount"):
        write_session_note(session, "a reason")
    assert not list(session.glob("*.tmp"))
    assert not list(session.glob(".*.tmp"))
