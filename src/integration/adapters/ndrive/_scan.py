"""Listing the N-Drive: session folders of a workstation, snapshots of a session, and its files classified."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

import msgspec

from integration.adapters.ndrive._errors import (
    Rejected,
    file_problems_as_rejection,
    map_os_errors,
    map_root_errors,
    raise_if_mount_error,
)
from integration.adapters.ndrive._model import FileState, IntakeRejection, SessionSnapshot
from integration.adapters.ndrive._names import is_ignored, is_own_note, printable, split_name, unsafe_name_reason

__all__ = ["SessionFile", "list_session_folders", "missing_workstations", "scan_session", "snapshot_session"]

#: Session folders with these prefixes are done (imported, failed) or not ours (hidden).
_DONE_PREFIXES = ("imported_", "error_", ".")


class SessionFile(msgspec.Struct, frozen=True):
    """A regular file of a session (or a symlink inside the N-Drive to one), split into stem and extension."""

    path: Path
    stem: str
    extension: str
    size: int


def list_session_folders(root: Path, workstation: str) -> list[Path]:
    """The session folders of ``<root>/<workstation>/`` still to import, sorted by name.

    Folders named ``imported_*``, ``error_*`` or ``.*`` and anything that is not a real directory (files,
    symlinks) are skipped. A missing workstation folder gives ``[]`` (:func:`missing_workstations` reports it).
    Raises :class:`~integration.errors.NdriveUnavailable` when the N-Drive root is missing or unreadable or the
    mount fails (EIO, ESTALE, ...): an unmounted drive is an outage, not an empty workstation; pause the intake.
    Raises :class:`~integration.errors.TransientError` when only the workstation folder cannot be read.
    """
    _check_root(root)
    folder = root / workstation
    with map_os_errors(folder):
        try:
            with os.scandir(folder) as entries:
                sessions = [Path(e.path) for e in entries if _is_open_session(e)]
        except (FileNotFoundError, NotADirectoryError):
            return []
    return sorted(sessions, key=lambda path: path.name)


def missing_workstations(root: Path, workstations: Iterable[str]) -> list[str]:
    """The names in ``workstations`` that have no folder under ``root`` (absent, or not a folder), in order.

    For the daemon's status: a missing folder is not an error (the workstation may not have delivered yet), but
    the data manager should see it. Raises :class:`~integration.errors.NdriveUnavailable` when the root itself is
    missing or unreadable or the mount fails, and :class:`~integration.errors.TransientError` when a workstation
    folder cannot be looked at.
    """
    _check_root(root)
    missing = []
    for workstation in workstations:
        folder = root / workstation
        with map_os_errors(folder):
            try:
                is_folder = stat.S_ISDIR(os.stat(folder).st_mode)
            except (FileNotFoundError, NotADirectoryError):
                is_folder = False
        if not is_folder:
            missing.append(workstation)
    return missing


def _check_root(root: Path) -> None:
    """Raise :class:`NdriveUnavailable` unless ``root`` can be listed."""
    with map_root_errors(root), os.scandir(root) as entries:
        next(entries, None)


def _is_open_session(entry: os.DirEntry[str]) -> bool:
    return not entry.name.startswith(_DONE_PREFIXES) and entry.is_dir(follow_symlinks=False)


def snapshot_session(session: Path) -> SessionSnapshot:
    """``lstat`` of every entry of ``session`` (sub-folders as entries, not recursed into), sorted by name.

    Our own ``*.error.txt`` notes are left out, so writing a note does not count as a change. Raises
    :class:`~integration.errors.TransientError` when the folder cannot be listed, and
    :class:`~integration.errors.NdriveUnavailable` when the mount fails.
    """
    with map_os_errors(session), os.scandir(session) as entries:
        states = [state for entry in entries if (state := _file_state(entry)) is not None]
    return SessionSnapshot(entries=tuple(sorted(states, key=lambda state: state.name)))


def _file_state(entry: os.DirEntry[str]) -> FileState | None:
    if is_own_note(entry.name):
        return None
    try:
        info = entry.stat(follow_symlinks=False)
    except FileNotFoundError:
        return None  # gone since listed: its absence is the change
    return FileState(name=entry.name, size=info.st_size, mtime_ns=info.st_mtime_ns)


def scan_session(session: Path, root: Path) -> tuple[list[SessionFile], list[IntakeRejection]]:
    """The asset files of ``session`` and a rejection for every entry that cannot be one.

    Hidden files and our notes are skipped. Unsafe names, sub-folders, special files and symlinks leaving
    ``root`` (or broken) are rejected under their own name. Raises
    :class:`~integration.errors.TransientError` only when the session folder itself cannot be listed, and
    :class:`~integration.errors.NdriveUnavailable` when the mount fails.
    """
    with map_root_errors(root):
        resolved_root = root.resolve()
    with map_os_errors(session), os.scandir(session) as listing:
        entries = sorted((e for e in listing if not is_ignored(e.name)), key=lambda e: e.name)
    files: list[SessionFile] = []
    rejections: list[IntakeRejection] = []
    for entry in entries:
        path = Path(entry.path)
        try:
            found = _classify(path, resolved_root)
        except Rejected as exc:
            rejections.append(IntakeRejection(name=entry.name, reason=exc.message, paths=(path,), guid=None))
            continue
        if found is not None:
            files.append(found)
    return files, rejections


def _classify(path: Path, root: Path) -> SessionFile | None:
    """The file at ``path`` if it may be part of an asset; None if it vanished; raises :class:`Rejected`."""
    name = printable(path.name)
    reason = unsafe_name_reason(path.name)
    if reason is not None:
        raise Rejected(
            f"The file name '{name}' {reason}, which is not allowed in asset file names. Rename the file to "
            "<GUID>.<type> (as the ingestion client does) and upload it again in a new session folder."
        )
    with file_problems_as_rejection(path):
        try:
            info = path.lstat()
        except FileNotFoundError:
            return None  # gone since listed; the watcher's next snapshot sees that
    if stat.S_ISLNK(info.st_mode):
        info = _link_target_info(path, root)
    return _regular_file(path, info)


def _link_target_info(link: Path, root: Path) -> os.stat_result:
    """``stat`` of the file a symlink points to, when that is inside the N-Drive; raises :class:`Rejected`."""
    name = printable(link.name)
    try:
        target = link.resolve(strict=True)
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop on Python 3.11/3.12
        if isinstance(exc, OSError):
            raise_if_mount_error(exc, link)
        raise Rejected(
            f"{name} is a symbolic link whose target cannot be found. Replace the link with the real file and "
            "upload it again in a new session folder."
        ) from exc
    if not target.is_relative_to(root):
        raise Rejected(
            f"{name} is a symbolic link pointing outside the N-Drive (to {printable(str(target))}); it is not "
            "followed. Put the real file in the session folder instead of a link."
        )
    with file_problems_as_rejection(link):
        return target.stat()


def _regular_file(path: Path, info: os.stat_result) -> SessionFile:
    name = printable(path.name)
    if stat.S_ISDIR(info.st_mode):
        raise Rejected(
            f"{name} is a folder inside the session folder; folders inside a session are not imported and not "
            "looked into. Move its files up into a session folder of their own and remove the folder."
        )
    if not stat.S_ISREG(info.st_mode):
        raise Rejected(f"{name} is not a regular file (it is a device, pipe or socket); it is not imported. Remove it.")
    stem, extension = split_name(path.name)
    return SessionFile(path=path, stem=stem, extension=extension, size=info.st_size)
