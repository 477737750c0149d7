"""list_session_folders and snapshot_session: which folders are new, and when a session has changed."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from integration.adapters.ndrive import (
    MOUNT_ERRNOS,
    IntakeRejection,
    list_session_folders,
    missing_workstations,
    snapshot_session,
    write_error_note,
)
from integration.errors import NdriveUnavailable, TransientError


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


def test_missing_ndrive_root_raises_ndrive_unavailable(tmp_path: Path) -> None:
    """An absent N-Drive root (unmounted drive) pauses the intake lane, naming the root; it is not an empty list."""
    root = tmp_path / "not-mounted"
    with pytest.raises(NdriveUnavailable) as caught:
        list_session_folders(root, "WORKHERB0001")
    assert caught.value.path == str(root)
    assert caught.value.lane == "intake"
    assert caught.value.reason == f"the N-Drive at {root} cannot be read (No such file or directory): check the mount"


def test_ndrive_root_that_is_a_file_raises_ndrive_unavailable(tmp_path: Path) -> None:
    """A root that cannot be listed (here a file) is as unavailable as a missing one."""
    (tmp_path / "ndrive").write_text("not a folder")
    with pytest.raises(NdriveUnavailable, match="Not a directory"):
        list_session_folders(tmp_path / "ndrive", "WORKHERB0001")


def _errno_name(code: int) -> str:
    return errno.errorcode[code]


@pytest.mark.parametrize("code", sorted(MOUNT_ERRNOS), ids=_errno_name)
def test_mount_errors_on_a_workstation_folder_raise_ndrive_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    """Each mount-level errno (EIO, ESTALE, ENOTCONN, ...) raises NdriveUnavailable naming the path and cause."""
    (tmp_path / "WORKHERB0001").mkdir()
    real_scandir = os.scandir

    def scandir(path: Path) -> object:
        if Path(path).name == "WORKHERB0001":
            raise OSError(code, os.strerror(code), str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(NdriveUnavailable) as caught:
        list_session_folders(tmp_path, "WORKHERB0001")
    assert caught.value.path == str(tmp_path / "WORKHERB0001")
    assert f"cannot be read ({os.strerror(code)}): check the mount" in caught.value.reason


def test_mount_list_covers_the_named_errnos() -> None:
    """The mount errnos include the ones a network mount reports when it fails, and no per-file ones."""
    assert {
        errno.EIO,
        errno.ESTALE,
        errno.ENOTCONN,
        errno.ETIMEDOUT,
        errno.EHOSTDOWN,
        errno.EHOSTUNREACH,
    } <= MOUNT_ERRNOS
    assert not {errno.EACCES, errno.ENOENT, errno.ENOTDIR, errno.ENOSPC} & MOUNT_ERRNOS


def test_stale_session_folder_raises_ndrive_unavailable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ESTALE while taking a session's snapshot is the mount's failure, reported in plain words."""

    def scandir(path: Path) -> object:
        raise OSError(errno.ESTALE, os.strerror(errno.ESTALE), str(path))

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(NdriveUnavailable, match=r"\(Stale file handle\): check the mount"):
        snapshot_session(tmp_path / "session")


@pytest.mark.parametrize("code", [errno.EACCES, errno.ENOTDIR, errno.ENOENT], ids=_errno_name)
def test_one_session_folder_failing_stays_transient(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int) -> None:
    """A permission problem, a non-folder or a vanished session is that folder's TransientError, not an outage."""

    def scandir(path: Path) -> object:
        raise OSError(code, os.strerror(code), str(path))

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(TransientError) as caught:
        snapshot_session(tmp_path / "session")
    assert not isinstance(caught.value, NdriveUnavailable)
    assert "session" in caught.value.message


def test_missing_workstations_names_absent_folders_and_files(tmp_path: Path) -> None:
    """missing_workstations lists, in the given order, the workstations without a folder (absent or a file)."""
    (tmp_path / "WORKHERB0001").mkdir()
    (tmp_path / "WORKHERB0002").write_text("a file, not a folder")
    (tmp_path / "WORKHERB0004").symlink_to(tmp_path / "WORKHERB0001")
    names = ["WORKHERB0003", "WORKHERB0001", "WORKHERB0002", "WORKHERB0004"]
    assert missing_workstations(tmp_path, names) == ["WORKHERB0003", "WORKHERB0002"]


def test_missing_workstations_of_a_missing_root_raises_ndrive_unavailable(tmp_path: Path) -> None:
    """Without the root no workstation can be judged: NdriveUnavailable, not every workstation missing."""
    with pytest.raises(NdriveUnavailable):
        missing_workstations(tmp_path / "not-mounted", ["WORKHERB0001"])


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
