"""The translations of errors in this adapter, each in one place.

Scope first (STYLE §9.2): would the next folder or asset get the same answer?

* :func:`raise_if_mount_error` / :data:`MOUNT_ERRNOS`: the N-Drive mount itself fails (EIO, ESTALE, a timeout):
  :class:`NdriveUnavailable`, the intake lane pauses. Every translation below asks this first.
* :func:`map_root_errors`: the N-Drive root is missing or unreadable: :class:`NdriveUnavailable` too.
* :func:`map_os_errors`: one session or workstation folder failed (a permission, a folder that vanished):
  :class:`TransientError`, the watcher tries that folder again later.
* :func:`file_problems_as_rejection`: one file of an asset cannot be examined: that asset is rejected with a
  plain reason (:class:`Rejected`, which never leaves this package), its neighbours are unaffected.
* :func:`unexpected_as_rejection`: anything else raised while examining one input (a bug, a decoder raising
  more than it documents) becomes that input's :class:`Rejected`, never a crash of the watcher.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path

from integration.adapters.ndrive._names import printable
from integration.errors import DataError, InfrastructureError, NdriveUnavailable, TransientError

__all__ = [
    "MOUNT_ERRNOS",
    "Rejected",
    "file_problems_as_rejection",
    "map_os_errors",
    "map_root_errors",
    "raise_if_mount_error",
    "unexpected_as_rejection",
]

_MOUNT_ERRNO_NAMES = (
    "EIO",
    "ESTALE",
    "ENOTCONN",
    "ETIMEDOUT",
    "EHOSTDOWN",
    "EHOSTUNREACH",
    "ENODEV",
    "ENXIO",
    "ENOLINK",
    "ECOMM",
    "EREMOTEIO",
)
#: ``errno`` values that mean the N-Drive mount itself fails, not one file or folder on it (those this
#: platform defines).
MOUNT_ERRNOS: frozenset[int] = frozenset(getattr(errno, name) for name in _MOUNT_ERRNO_NAMES if hasattr(errno, name))


class Rejected(DataError):
    """Internal: a check failed with ``reason``; turned into an ``IntakeRejection`` before leaving the package."""


def raise_if_mount_error(exc: OSError, path: Path) -> None:
    """Raise :class:`NdriveUnavailable` naming ``path`` (from ``exc``) when ``exc`` is a failure of the mount.

    Returns normally for any other error, which the caller then translates by its own scope.
    """
    if exc.errno in MOUNT_ERRNOS:
        raise NdriveUnavailable(_unavailable_message(path, exc), path=str(path)) from exc


@contextlib.contextmanager
def map_root_errors(root: Path) -> Iterator[None]:
    """Translate any ``OSError`` on the N-Drive root into :class:`NdriveUnavailable`: without it, nothing works."""
    try:
        yield
    except OSError as exc:
        raise NdriveUnavailable(_unavailable_message(root, exc), path=str(root)) from exc


@contextlib.contextmanager
def map_os_errors(path: Path) -> Iterator[None]:
    """Translate ``OSError`` on an N-Drive folder: the mount failing raises :class:`NdriveUnavailable`, anything
    else :class:`TransientError` naming the path (try that folder again later)."""
    try:
        yield
    except OSError as exc:
        where = _where(exc, path)
        raise_if_mount_error(exc, where)
        raise TransientError(f"N-Drive folder {where} cannot be read or changed: {_why(exc)}") from exc


@contextlib.contextmanager
def file_problems_as_rejection(path: Path) -> Iterator[None]:
    """Translate ``OSError`` on one file into :class:`Rejected` with a reason a digitiser can act on.

    A failure of the mount itself raises :class:`NdriveUnavailable` instead: it is nobody's asset's fault.
    """
    try:
        yield
    except OSError as exc:
        raise_if_mount_error(exc, _where(exc, path))
        raise Rejected(
            f"The file {printable(path.name)} could not be read ({_why(exc)}). Check that it is a "
            "complete, readable file, then upload the asset again in a new session folder."
        ) from exc


@contextlib.contextmanager
def unexpected_as_rejection(subject: str, advice: str) -> Iterator[None]:
    """Turn anything unexpected raised inside into :class:`Rejected`: "<subject> could not be examined: ...".

    :class:`Rejected`, :class:`TransientError` and :class:`InfrastructureError` pass unchanged: they already say
    what to do. ``advice`` ends the reason (what the digitiser should do next).
    """
    try:
        yield
    except (Rejected, TransientError, InfrastructureError):
        raise
    except Exception as exc:  # the adapter's edge (STYLE §9.4): one odd input must never stop the watcher
        raise Rejected(f"{subject} could not be examined: {_describe(exc)}. {advice}") from exc


def _unavailable_message(path: Path, exc: OSError) -> str:
    return f"the N-Drive at {printable(str(path))} cannot be read ({_why(exc)}): check the mount"


def _where(exc: OSError, default: Path) -> Path:
    return Path(os.fsdecode(exc.filename)) if isinstance(exc.filename, str | bytes) else default


def _why(exc: OSError) -> str:
    if exc.strerror:
        return exc.strerror
    return os.strerror(exc.errno) if exc.errno else str(exc) or type(exc).__name__


def _describe(exc: Exception) -> str:
    text = printable(str(exc))
    detail = f"{type(exc).__name__}: {text[:197]}..." if len(text) > 200 else f"{type(exc).__name__}: {text}"
    return f"an unexpected error occurred ({detail if text else type(exc).__name__})"
