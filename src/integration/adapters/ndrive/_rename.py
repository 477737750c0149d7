"""The ``imported_`` rename of a session folder, in two steps so the daemon can record the target first.

Intent, then rename, then record: :func:`plan_imported_name` picks the name, the daemon persists it,
:func:`rename_session` makes the rename. After a crash in between, the daemon knows where the folder went.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Collection
from pathlib import Path
from typing import Literal

from integration.adapters.ndrive._errors import map_os_errors
from integration.errors import TransientError

__all__ = ["find_imported_folder", "mark_session_imported", "plan_imported_name", "rename_outcome", "rename_session"]

_IMPORTED_PREFIX = "imported_"


def plan_imported_name(session: Path) -> Path:
    """The free name ``imported_<name>`` next to ``session``, or ``imported_<name>_2``, ``_3``, ... when taken.

    Nothing is changed. Raises :class:`~integration.errors.TransientError` when the parent folder cannot be
    read, :class:`~integration.errors.NdriveUnavailable` when the mount fails.
    """
    name = _IMPORTED_PREFIX + session.name
    names = (session.parent / (name if n == 1 else f"{name}_{n}") for n in itertools.count(1))
    with map_os_errors(session.parent):
        return next(path for path in names if not _exists(path))


def rename_session(session: Path, target: Path) -> None:
    """Rename ``session`` to ``target`` (a name from :func:`plan_imported_name`), never replacing anything.

    Raises :class:`~integration.errors.TransientError` when something already exists at ``target`` (even an
    empty folder, which a plain rename would silently replace: plan a new name and record it first) or when the
    rename fails; the folder is then unchanged. Raises :class:`~integration.errors.NdriveUnavailable` when the
    mount fails. (A folder created at ``target`` between the check and the rename is not detected: the N-Drive
    offers no rename that refuses to replace.)
    """
    with map_os_errors(session):
        if _exists(target):
            raise TransientError(
                f"cannot rename N-Drive folder {session} to {target.name}: something named so exists already; "
                "plan a new name"
            )
        os.rename(session, target)


def mark_session_imported(session: Path) -> Path:
    """Rename ``session`` to the name :func:`plan_imported_name` gives, and return the new path.

    For callers that do not record the target first. Raises as :func:`plan_imported_name` and
    :func:`rename_session` do; the folder is then unchanged.
    """
    target = plan_imported_name(session)
    rename_session(session, target)
    return target


def _exists(path: Path) -> bool:
    """Whether anything (a broken symlink too) is at ``path``; unlike ``os.path.lexists``, errors are raised."""
    try:
        os.lstat(path)
    except FileNotFoundError:
        return False
    return True


def rename_outcome(session: Path, target: Path) -> Literal["renamed", "not_renamed", "unclear"]:
    """Whether an interrupted rename of ``session`` to ``target`` happened, judged by what exists now.

    ``renamed``: only ``target`` exists; ``not_renamed``: only ``session`` exists; ``unclear``: both or
    neither (a human should look). Raises :class:`~integration.errors.NdriveUnavailable` when the mount fails
    and :class:`~integration.errors.TransientError` when the parent folder cannot be read.
    """
    with map_os_errors(session.parent):
        here, there = _exists(session), _exists(target)
    if there and not here:
        return "renamed"
    if here and not there:
        return "not_renamed"
    return "unclear"


def find_imported_folder(session: Path, names: Collection[str]) -> Path | None:
    """Where ``session`` went when an earlier release renamed it without recording the target.

    The one folder ``imported_<name>`` or ``imported_<name>_<n>`` next to it that holds every file of
    ``names``; None when ``session`` is still there, or no such folder (or more than one) is found. Raises
    :class:`~integration.errors.NdriveUnavailable` when the mount fails, :class:`TransientError` when the
    parent folder cannot be read.
    """
    pattern = re.compile(re.escape(_IMPORTED_PREFIX + session.name) + r"(_[0-9]+)?")
    with map_os_errors(session.parent):
        if _exists(session):
            return None
        found = [
            entry
            for entry in session.parent.iterdir()
            if pattern.fullmatch(entry.name) and entry.is_dir() and all((entry / name).exists() for name in names)
        ]
    return found[0] if len(found) == 1 else None
