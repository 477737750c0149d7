"""list_session_folders and snapshot_session: which folders are new, and when a session has changed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from integration.adapters.ndrive import (
    IntakeRejection,
    list_session_folders,
    snapshot_session,
    write_error_note,
)
from integration.errors import TransientError


def test_list_session_folders_skips_imported_error_hidden_and_files(tmp_path: Path) -> None:
    """Only real, not yet handled session folders are listed, sorted by name."""
    workstation = tmp_path / "WORKHERB0001"
    for name in ("b_session", "a_session", "imported_old", "error_bad", ".hidden"):
        (workstation / name).mkdir(parents=True)
    (workstation / "c_file.txt").write_text("not a folder")
    (workstation / "d_link").symlink_to(workstation / "a_session")
    assert list_session_folders(tmp_path, "WORKHERB0001") == [workstation / "a_session", workstation / "b_session"]


def test_missing_workstation_folder_lists_nothing(tmp_path: Path) -> None:
    """A workstation folder that does not exist (yet) gives an empty list."""
    assert list_session_folders(tmp_path, "WORKHERB0009") == []


def test_missing_ndrive_root_raises_transient(tmp_path: Path) -> None:
    """An absent N-Drive root (unmounted drive) is an outage, not an empty workstation."""
    with pytest.raises(TransientError, match="not-mounted"):
        list_session_folders(tmp_path / "not-mounted", "WORKHERB0001")


@pytest.fixture
def session(tmp_path: Path) -> Path:
    """A session folder with one file and one sub-folder."""
    folder = tmp_path / "session"
    folder.mkdir()
    (folder / "a.tif").write_bytes(b"12345")
    (folder / "sub").mkdir()
    return folder


def test_snapshot_is_sorted_and_stable(session: Path) -> None:
    """Two snapshots of an unchanged folder are equal and list every entry by name."""
    first = snapshot_session(session)
    assert [entry.name for entry in first.entries] == ["a.tif", "sub"]
    assert first.entries[0].size == 5
    assert snapshot_session(session) == first


def test_snapshot_changes_when_a_file_grows(session: Path) -> None:
    """Appending to a file changes the snapshot."""
    before = snapshot_session(session)
    with (session / "a.tif").open("ab") as handle:
        handle.write(b"6")
    assert snapshot_session(session) != before


def test_snapshot_changes_when_a_file_is_touched(session: Path) -> None:
    """A new modification time alone changes the snapshot."""
    before = snapshot_session(session)
    stat = (session / "a.tif").stat()
    os.utime(session / "a.tif", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert snapshot_session(session) != before


def test_snapshot_changes_when_a_file_appears(session: Path) -> None:
    """A new file, even a hidden one (an upload in progress), changes the snapshot."""
    before = snapshot_session(session)
    (session / ".upload.part").write_bytes(b"")
    assert snapshot_session(session) != before


def test_snapshot_does_not_follow_symlinks(session: Path, tmp_path: Path) -> None:
    """A symlink is recorded by its own lstat, not its target's."""
    target = tmp_path / "big.bin"
    target.write_bytes(b"x" * 1000)
    (session / "link.tif").symlink_to(target)
    entry = next(e for e in snapshot_session(session).entries if e.name == "link.tif")
    assert entry.size == len(str(target))


def test_writing_an_error_note_does_not_change_the_snapshot(session: Path) -> None:
    """Our own notes are left out, so leaving one does not restart the settle wait."""
    before = snapshot_session(session)
    write_error_note(session, IntakeRejection(name="a.tif", reason="bad", paths=(session / "a.tif",), guid=None))
    assert snapshot_session(session) == before


def test_snapshot_of_missing_session_raises_transient(tmp_path: Path) -> None:
    """A session folder that vanished raises TransientError."""
    with pytest.raises(TransientError):
        snapshot_session(tmp_path / "gone")
