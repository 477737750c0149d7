"""One daemon per database: an advisory lock on ``<database>.lock`` held for the daemon's whole life.

The lock file holds the owner's PID so that a second daemon can say who is in the way. The lock is
``flock``-based: the kernel drops it when the process dies, even by SIGKILL, so a crash never leaves a stale
lock behind. Readers (``integration status``) never take it; commands that change assets take it only when no
daemon runs (otherwise they send the daemon a request).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from integration.errors import DaemonRunning

__all__ = ["daemon_lock", "holder_of", "lock_path"]


def lock_path(database: Path) -> Path:
    """Where the lock of ``database`` lives."""
    return database.with_name(database.name + ".lock")


@contextlib.contextmanager
def daemon_lock(database: Path) -> Iterator[None]:
    """Hold the database's daemon lock for the duration; raises :class:`DaemonRunning` if another holds it."""
    path = lock_path(database)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DaemonRunning(path=str(database), pid=_read_pid(fd)) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def holder_of(database: Path) -> int | None:
    """The PID of the daemon holding ``database`` (0 if its PID is unreadable), or None when none does."""
    path = lock_path(database)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_pid(fd) or 0
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
