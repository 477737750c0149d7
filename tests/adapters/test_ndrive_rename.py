"""plan_imported_name and rename_session: the ``imported_`` rename in two steps, never replacing anything."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from integration.adapters.ndrive import mark_session_imported, plan_imported_name, rename_session
from integration.errors import NdriveUnavailable, TransientError

GUID = "7e8-8-08-0c-1b-15-2-003-04-000-01e240"


@pytest.fixture
def session(tmp_path: Path) -> Path:
    """A session folder with one asset's image."""
    folder = tmp_path / "WORKHERB0001" / "20240517_session"
    folder.mkdir(parents=True)
    (folder / f"{GUID}.tif").write_bytes(b"II*\x00")
    return folder


def test_planned_name_is_imported_prefix_and_nothing_changes(session: Path) -> None:
    """plan_imported_name gives imported_<name> next to the session and renames nothing."""
    assert plan_imported_name(session) == session.parent / "imported_20240517_session"
    assert session.is_dir()
    assert sorted(p.name for p in session.parent.iterdir()) == ["20240517_session"]


def test_planned_name_skips_taken_names_with_a_suffix(session: Path) -> None:
    """A taken imported_<name> (even an empty folder or a broken link) gives _2, then _3."""
    (session.parent / "imported_20240517_session").mkdir()
    assert plan_imported_name(session) == session.parent / "imported_20240517_session_2"
    (session.parent / "imported_20240517_session_2").symlink_to(session.parent / "nowhere")
    assert plan_imported_name(session) == session.parent / "imported_20240517_session_3"


def test_rename_moves_the_folder_with_its_files(session: Path) -> None:
    """rename_session renames the folder to the planned name; its files are unchanged."""
    target = plan_imported_name(session)
    rename_session(session, target)
    assert not session.exists()
    assert (target / f"{GUID}.tif").read_bytes() == b"II*\x00"


def test_target_taken_between_plan_and_rename_is_refused(session: Path) -> None:
    """An empty folder created at the target after planning is not replaced: TransientError, nothing changes."""
    target = plan_imported_name(session)
    target.mkdir()
    with pytest.raises(TransientError, match="exists already"):
        rename_session(session, target)
    assert (session / f"{GUID}.tif").read_bytes() == b"II*\x00"
    assert list(target.iterdir()) == []


def test_rename_of_a_vanished_session_is_transient(session: Path, tmp_path: Path) -> None:
    """A session folder that is gone raises TransientError (that folder's problem, not an outage)."""
    target = plan_imported_name(session)
    with pytest.raises(TransientError) as caught:
        rename_session(tmp_path / "gone", target)
    assert not isinstance(caught.value, NdriveUnavailable)


def test_rename_on_a_failing_mount_raises_ndrive_unavailable(session: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ESTALE from the rename is the mount's failure: NdriveUnavailable naming the folder, the folder unchanged."""
    target = plan_imported_name(session)

    def stale_rename(src: object, dst: object) -> None:
        raise OSError(errno.ESTALE, os.strerror(errno.ESTALE), str(src), None, str(dst))

    monkeypatch.setattr(os, "rename", stale_rename)
    with pytest.raises(NdriveUnavailable, match=r"\(Stale file handle\): check the mount") as caught:
        rename_session(session, target)
    assert caught.value.path == str(session)
    assert session.is_dir()


def test_planning_on_a_failing_mount_raises_instead_of_guessing(session: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """EIO while checking a name raises NdriveUnavailable; a name is never planned from an unanswered check."""

    def failing_lstat(path: object) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO), str(path))

    monkeypatch.setattr(os, "lstat", failing_lstat)
    with pytest.raises(NdriveUnavailable):
        plan_imported_name(session)


def test_mark_session_imported_plans_and_renames(session: Path) -> None:
    """mark_session_imported still renames in one call and returns the new path, suffixed when taken."""
    (session.parent / "imported_20240517_session").mkdir()
    new = mark_session_imported(session)
    assert new == session.parent / "imported_20240517_session_2"
    assert (new / f"{GUID}.tif").exists()
