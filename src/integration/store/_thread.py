"""A sqlite3 connection owned by one thread, called from trio, with group commit.

Every call is a function ``fn(connection) -> result`` that runs on the database thread inside a SAVEPOINT.
The thread takes whatever calls are waiting (up to ``max_batch``) and runs them in ONE transaction, so many
small writes cost one fsync: that is how the store sustains thousands of transitions per second while each
caller still sees its own call succeed or fail on its own (a failing call rolls back only its savepoint).
Results are handed back to trio with one ``run_sync_soon`` per call, never by blocking the event loop.

Commits are durable when a call returns (``synchronous=FULL``, the default): the daemon renames folders on the
N-Drive and calls ARS right after recording that it will, and a power cut must not be able to keep the effect
while losing the record (docs/architecture.md, "Durability"; the cost is in docs/benchmarks.md).

A failing batch never stops the thread: whatever it raises (a failing ``COMMIT`` or ``ROLLBACK`` included,
e.g. ``disk I/O error``) is handed to each of its callers, and the next batch starts afresh. Should the
thread end all the same, every waiting and every later call raises :class:`StoreUnavailable` at once: no
caller ever waits for an answer that cannot come.
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

from integration.errors import IntegrationError, Scope

__all__ = ["DatabaseThread", "StoreUnavailable"]

T = TypeVar("T")

_STOP = object()


class StoreUnavailable(IntegrationError):
    """The database thread has ended, so the store can no longer be used (``cause`` says why).

    SITE scope: every caller gets the same answer. Nothing retries it: stop the daemon (or command), look at
    the cause (a failing disk, a full disk, a damaged database file) and start it again.
    """

    scope = Scope.SITE

    def __init__(self, cause: str) -> None:
        super().__init__(f"the store is unavailable: {cause}")
        self.cause = cause


class _Call(Generic[T]):
    __slots__ = ("done", "fn", "result", "token")

    def __init__(self, fn: Callable[[sqlite3.Connection], T], token: trio.lowlevel.TrioToken) -> None:
        self.fn = fn
        self.token = token
        self.done = trio.Event()
        self.result: outcome.Outcome[T] | None = None

    def answer(self, result: outcome.Outcome[T]) -> None:
        """Hand ``result`` back to the waiting trio task (from the database thread)."""
        self.result = result
        # RunFinishedError: the caller's trio run is gone and nobody waits for this result.
        with contextlib.suppress(trio.RunFinishedError):
            self.token.run_sync_soon(self.done.set)


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
        # Guards ``_ended`` against a call queued while the thread ends (it would wait forever).
        self._accepting = threading.Lock()
        self._ended: str | None = None
        self._cause: BaseException | None = None  # what ended the thread, as the __cause__ of StoreUnavailable
        self._batch: list[_Call[Any]] = []  # taken off the queue, not answered yet
        self._thread = threading.Thread(target=self._run, name="integration-sqlite", daemon=True)
        self.transactions = 0
        self.calls = 0

    @property
    def ended(self) -> str | None:
        """Why the database thread ended (None while it runs): what :class:`StoreUnavailable` says."""
        return self._ended

    def start(self) -> None:
        """Open the connection on the database thread; raises what opening raised."""
        self._thread.start()
        self._ready.wait()
        if self._startup_error is not None:
            raise self._startup_error

    def stop(self) -> None:
        """Finish queued calls, close the connection and join the thread (later calls raise StoreUnavailable)."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join()

    async def call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(connection)`` on the database thread in its own savepoint and return its result.

        Raises what ``fn`` raised (only its savepoint is rolled back), what the batch's transaction raised
        (``sqlite3.Error``: nothing of the call was kept), or :class:`StoreUnavailable` when the thread has
        ended. The call is not cancellable once queued: its transaction either commits or rolls back as a
        whole, and the caller waits for that (shielded) so that no write is left in an unknown state.
        """
        item = _Call(fn, trio.lowlevel.current_trio_token())
        with self._accepting:
            if self._ended is not None:
                raise self._unavailable()
            self._queue.put(item)
        with trio.CancelScope(shield=True):
            await item.done.wait()
        assert item.result is not None
        return item.result.unwrap()

    # -- database thread ---------------------------------------------------------------------------------

    def _run(self) -> None:
        """The thread: open the connection, serve batches until stopped, then refuse every call left."""
        connection = self._open()
        if connection is None:
            self._end("the database could not be opened")
            return
        why = "the store was closed"
        try:
            self._serve(connection)
        except BaseException as exc:  # a bug: recorded, and every caller told, instead of a silent hang
            why = f"the database thread stopped: {type(exc).__name__}: {exc}"
            self._cause = exc
        finally:
            with contextlib.suppress(sqlite3.Error):
                connection.close()
            self._end(why)

    def _open(self) -> sqlite3.Connection | None:
        """The configured connection, or None after reporting the failure to :meth:`start`."""
        try:
            connection = sqlite3.connect(self._path, isolation_level=None, check_same_thread=True)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute(f"PRAGMA synchronous={self._synchronous}")
            connection.execute("PRAGMA foreign_keys=ON")
            connection.execute("PRAGMA busy_timeout=5000")
        except BaseException as exc:  # reported to start(), which re-raises it
            self._startup_error = exc
            self._ready.set()
            return None
        self._ready.set()
        return connection

    def _serve(self, connection: sqlite3.Connection) -> None:
        """Run batches of queued calls until :meth:`stop` asks to end."""
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch = self._batch = [first]
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
            self._batch = []
            if stop:
                return

    def _end(self, why: str) -> None:
        """Refuse every later call with ``why`` and fail every call still unanswered (in a batch or queued) with it."""
        with self._accepting:
            self._ended = why
        for item in self._batch:
            if item.result is None:
                item.answer(outcome.Error(self._unavailable()))
        self._batch = []
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not _STOP:
                item.answer(outcome.Error(self._unavailable()))

    def _unavailable(self) -> StoreUnavailable:
        """The error of a call made or left after the thread ended (chained to what ended it, if anything)."""
        error = StoreUnavailable(self._ended or "the database thread ended")
        error.__cause__ = self._cause
        return error

    def _run_batch(self, connection: sqlite3.Connection, batch: list[_Call[Any]]) -> None:
        """Run ``batch`` in one transaction and answer each call; never raises (a failure fails the batch)."""
        try:
            results = self._transaction(connection, batch)
        except Exception as exc:  # COMMIT, ROLLBACK TO, a broken connection: nothing of the batch was kept
            self._roll_back(connection)
            results = [outcome.Error(exc) for _ in batch]
        for item, result in zip(batch, results, strict=True):
            item.answer(result)

    def _transaction(self, connection: sqlite3.Connection, batch: list[_Call[Any]]) -> list[outcome.Outcome[Any]]:
        """Each call in its savepoint inside one committed transaction; raises when the transaction fails."""
        if connection.in_transaction:  # an earlier ROLLBACK failed: end that transaction first
            connection.execute("ROLLBACK")
        results: list[outcome.Outcome[Any]] = []
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
        return results

    @staticmethod
    def _roll_back(connection: sqlite3.Connection) -> None:
        """Undo an unfinished transaction; if even that fails, the next batch tries again before it begins."""
        with contextlib.suppress(Exception):
            if connection.in_transaction:
                connection.execute("ROLLBACK")
