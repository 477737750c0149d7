"""A sqlite3 connection owned by one thread, called from trio, with group commit.

Every call is a function ``fn(connection) -> result`` that runs on the database thread inside a SAVEPOINT.
The thread takes whatever calls are waiting (up to ``max_batch``) and runs them in ONE transaction, so many
small writes cost one fsync: that is how the store sustains thousands of transitions per second while each
caller still sees its own call succeed or fail on its own (a failing call rolls back only its savepoint).
Results are handed back to trio with one ``run_sync_soon`` per call, never by blocking the event loop.

Commits are durable when a call returns (``synchronous=FULL``, the default): the daemon renames folders on the
N-Drive and calls ARS right after recording that it will, and a power cut must not be able to keep the effect
while losing the record (docs/architecture.md, "Durability"; the cost is in docs/benchmarks.md).
"""

from __future__ import annotations

import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

import outcome
import trio

__all__ = ["DatabaseThread"]

T = TypeVar("T")

_STOP = object()


class _Call(Generic[T]):
    __slots__ = ("done", "fn", "result", "token")

    def __init__(self, fn: Callable[[sqlite3.Connection], T], token: trio.lowlevel.TrioToken) -> None:
        self.fn = fn
        self.token = token
        self.done = trio.Event()
        self.result: outcome.Outcome[T] | None = None


class DatabaseThread:
    """Owns one sqlite3 connection on a dedicated thread; :meth:`call` runs a function there."""

    def __init__(self, path: Path, *, max_batch: int = 512, synchronous: str = "FULL") -> None:
        if synchronous not in ("FULL", "NORMAL", "EXTRA"):
            raise ValueError(f"synchronous must be FULL, NORMAL or EXTRA, not {synchronous!r}")
        self._path = path
        self._max_batch = max_batch
        self._synchronous = synchronous
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="integration-sqlite", daemon=True)
        self.transactions = 0
        self.calls = 0

    def start(self) -> None:
        """Open the connection on the database thread; raises what opening raised."""
        self._thread.start()
        self._ready.wait()
        if self._startup_error is not None:
            raise self._startup_error

    def stop(self) -> None:
        """Finish queued calls, close the connection and join the thread."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()

    async def call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(connection)`` on the database thread in its own savepoint and return its result.

        The call is not cancellable once queued: its transaction either commits or rolls back as a whole,
        and the caller waits for that (shielded) so that no write is left in an unknown state.
        """
        item = _Call(fn, trio.lowlevel.current_trio_token())
        self._queue.put(item)
        with trio.CancelScope(shield=True):
            await item.done.wait()
        assert item.result is not None
        return item.result.unwrap()

    # -- database thread ---------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            connection = sqlite3.connect(self._path, isolation_level=None, check_same_thread=True)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(f"PRAGMA synchronous={self._synchronous}")
            connection.execute("PRAGMA foreign_keys=ON")
            connection.execute("PRAGMA busy_timeout=5000")
        except BaseException as exc:  # reported to start(), which re-raises it
            self._startup_error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            while True:
                first = self._queue.get()
                if first is _STOP:
                    return
                batch = [first]
                stop = False
                while len(batch) < self._max_batch:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is _STOP:
                        stop = True
                        break
                    batch.append(item)
                self._run_batch(connection, batch)
                if stop:
                    return
        finally:
            connection.close()

    def _run_batch(self, connection: sqlite3.Connection, batch: list[_Call[Any]]) -> None:
        results: list[outcome.Outcome[Any]] = []
        try:
            connection.execute("BEGIN IMMEDIATE")
            for item in batch:
                connection.execute("SAVEPOINT call")
                result = outcome.capture(item.fn, connection)
                if isinstance(result, outcome.Error):
                    connection.execute("ROLLBACK TO call")
                connection.execute("RELEASE call")
                results.append(result)
            connection.execute("COMMIT")
            self.transactions += 1
            self.calls += len(batch)
        except sqlite3.Error as exc:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            results = [outcome.Error(exc) for _ in batch]
        for item, result in zip(batch, results, strict=True):
            item.result = result
            # RunFinishedError: the caller's trio run is gone and nobody waits for this result.
            with contextlib.suppress(trio.RunFinishedError):
                item.token.run_sync_soon(item.done.set)
