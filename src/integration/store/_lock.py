"""One daemon per database: an advisory lock on ``<database>.lock``, held for the daemon's whole life.

The lock file says who holds it — ``"<PID> daemon"`` or ``"<PID> command"`` (``integration retry``/``ack``
working on the database while no daemon runs) — so that whoever is refused can say who is in the way. The lock
is ``flock``-based: the kernel drops it when the process dies, even by SIGKILL, so a crash never leaves a stale
lock behind. Readers (``integration status``) never hold it: :func:`lock_holder` only tests it for a moment,
and :func:`daemon_lock` tries a few times before it gives up, so that such a test never makes a daemon or a
command fail to start.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import msgspec

from integration.errors import DaemonRunning

__all__ = ["CommandRunning", "LockHolder", "LockRole", "daemon_lock", "holder_of", "lock_holder", "lock_path"]

#: Who holds the lock: the daemon, an operator's command working on the database itself, or a holder whose
#: lock file says nothing yet (it took the lock a moment ago, or was written by an older release).
LockRole = Literal["daemon", "command", "unknown"]

_ATTEMPTS = 10
_PAUSE_S = 0.02


class LockHolder(msgspec.Struct, frozen=True, kw_only=True):
    """Who holds a database's lock: ``pid`` (None if unreadable) and ``role``."""

    pid: int | None
    role: LockRole


class CommandRunning(DaemonRunning):
    """Another ``integration`` command (``pid``) works on the database at ``path`` for a moment.

    A :class:`DaemonRunning` so that whoever refuses to start on it goes on doing so; unlike a daemon, the
    command answers no requests and ends soon: try again in a moment.
    """

    def __init__(self, *, path: str, pid: int | None) -> None:
        super().__init__(path=path, pid=pid)
        who = f"PID {pid}" if pid else "PID unknown"
        self.message = f"another `integration` command ({who}) is working on {path}; try again in a moment"
        self.args = (self.message,)


def lock_path(database: Path) -> Path:
    """Where the lock of ``database`` lives."""
    return database.with_name(database.name + ".lock")


@contextlib.contextmanager
def daemon_lock(database: Path, *, role: Literal["daemon", "command"] = "daemon") -> Iterator[None]:
    """Hold the database's lock as ``role`` for the duration.

    Tries for a moment (a reader's test of the lock holds it briefly) and then raises :class:`CommandRunning`
    when an ``integration`` command holds it, or :class:`DaemonRunning` when a daemon (or a holder that does
    not say) holds it: stop the other daemon, or try again once the command is done.
    """
    path = lock_path(database)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if not _take(fd):
            holder = _read_holder(fd)
            error = CommandRunning if holder.role == "command" else DaemonRunning
            raise error(path=str(database), pid=holder.pid)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {role}\n".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def lock_holder(database: Path) -> LockHolder | None:
    """Who holds the lock of ``database`` now, or None when nobody does (tests it without waiting)."""
    try:
        fd = os.open(lock_path(database), os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_holder(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def holder_of(database: Path) -> int | None:
    """The PID of the *daemon* holding ``database`` (0 if unreadable); None when free or a command holds it."""
    holder = lock_holder(database)
    if holder is None or holder.role == "command":
        return None
    return holder.pid or 0


def _take(fd: int) -> bool:
    """Take the exclusive lock, trying :data:`_ATTEMPTS` times; False when someone else keeps it."""
    for attempt in range(_ATTEMPTS):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if attempt + 1 < _ATTEMPTS:
                time.sleep(_PAUSE_S)
            continue
        return True
    return False


def _read_holder(fd: int) -> LockHolder:
    """What the lock file says: ``"<PID> <role>"``; a bare PID is a daemon (the first release wrote that)."""
    try:
        words = os.pread(fd, 64, 0).decode("ascii", "replace").split()
    except OSError:
        words = []
    pid = int(words[0]) if words and words[0].isdigit() else None
    role: LockRole = "unknown"
    if pid is not None:
        role = "command" if words[1:2] == ["command"] else "daemon"
    return LockHolder(pid=pid, role=role)
