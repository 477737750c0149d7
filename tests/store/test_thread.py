"""The database thread: a failing batch never stops it, and no caller ever waits for an answer that cannot come."""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
import trio

from integration.store import DatabaseThread, StoreUnavailable

T = TypeVar("T")

_CONNECT = sqlite3.connect


class FlakyDisk:
    """A sqlite3 connection whose COMMIT and ROLLBACK fail with a disk I/O error while ``failing`` is set."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection
        self.failing = False

    @property
    def in_transaction(self) -> bool:
        return self.connection.in_transaction

    def execute(self, sql: str, *parameters: Any) -> sqlite3.Cursor:
        if self.failing and sql in ("COMMIT", "ROLLBACK"):
            raise sqlite3.OperationalError("disk I/O error")
        return self.connection.execute(sql, *parameters)

    def close(self) -> None:
        self.connection.close()


async def within(seconds: float, scenario: Callable[[], Awaitable[T]]) -> T:
    """Run ``scenario`` in a trio run of its own on a worker thread, so that a caller stuck in the database
    thread's shielded wait fails the test after ``seconds`` instead of hanging it."""
    with trio.fail_after(seconds):
        return await trio.to_thread.run_sync(trio.run, scenario, abandon_on_cancel=True)


def insert(value: int) -> Callable[[sqlite3.Connection], int]:
    def write(connection: sqlite3.Connection) -> int:
        connection.execute("INSERT INTO t (v) VALUES (?)", (value,))
        return value

    return write


def count(connection: sqlite3.Connection) -> int:
    return int(connection.execute("SELECT count(*) FROM t").fetchone()[0])


@pytest.fixture
def flaky(monkeypatch: pytest.MonkeyPatch) -> list[FlakyDisk]:
    """Every sqlite3 connection opened during the test, wrapped in a :class:`FlakyDisk`."""
    opened: list[FlakyDisk] = []

    def connect(*args: Any, **kwargs: Any) -> FlakyDisk:
        opened.append(FlakyDisk(_CONNECT(*args, **kwargs)))
        return opened[-1]

    monkeypatch.setattr(sqlite3, "connect", connect)
    return opened


async def test_a_failing_commit_and_rollback_fail_the_batch_but_not_the_thread(
    tmp_path: Path, flaky: list[FlakyDisk]
) -> None:
    """When COMMIT and ROLLBACK fail, the batch's callers get the error and later calls work again."""
    db = DatabaseThread(tmp_path / "t.db")
    db.start()
    [disk] = flaky

    async def scenario() -> tuple[list[BaseException], int]:
        await db.call(lambda c: c.execute("CREATE TABLE t (v INTEGER)"))
        disk.failing = True
        errors: list[BaseException] = []

        async def write(value: int) -> None:
            try:
                await db.call(insert(value))
            except sqlite3.OperationalError as exc:
                errors.append(exc)

        async with trio.open_nursery() as nursery:
            for value in range(5):
                nursery.start_soon(write, value)
        with pytest.raises(sqlite3.OperationalError, match="disk I/O"):  # the transaction left open fails it too
            await db.call(insert(99))
        disk.failing = False
        await db.call(insert(7))
        return errors, await db.call(count)

    try:
        errors, rows = await within(10, scenario)
    finally:
        db.stop()
    assert len(errors) == 5
    assert all("disk I/O error" in str(e) for e in errors)
    assert rows == 1  # only the write after the disk recovered was kept


async def test_when_the_thread_ends_every_waiting_and_later_call_raises_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Should the database thread end by a bug, queued calls and later calls raise StoreUnavailable naming why."""
    db = DatabaseThread(tmp_path / "t.db")
    db.start()

    def broken(self: DatabaseThread, connection: sqlite3.Connection, batch: list[Any]) -> None:
        raise RuntimeError("a bug in the batch loop")

    monkeypatch.setattr(DatabaseThread, "_run_batch", broken)

    async def scenario() -> list[str]:
        messages: list[str] = []

        async def call() -> None:
            try:
                await db.call(count)
            except StoreUnavailable as exc:
                messages.append(str(exc))

        async with trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(call)
        await call()  # after the thread ended: at once
        return messages

    try:
        messages = await within(10, scenario)
    finally:
        db.stop()
    assert len(messages) == 4
    assert all("RuntimeError: a bug in the batch loop" in m for m in messages)
    assert db.ended is not None


async def test_calls_after_stop_raise_instead_of_waiting(tmp_path: Path) -> None:
    """A call made after the store was closed raises StoreUnavailable at once."""
    db = DatabaseThread(tmp_path / "t.db")
    db.start()
    db.stop()

    async def scenario() -> None:
        with pytest.raises(StoreUnavailable, match="closed"):
            await db.call(count)

    await within(10, scenario)
