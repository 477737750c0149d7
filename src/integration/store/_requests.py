"""Operator requests (``integration retry``, ``integration ack``) handed to a running daemon.

While a daemon runs, the commands do not change assets themselves: they add a row here and wait for the
daemon's answer, so every change goes through the daemon's actors and the one-writer rule holds (the row is
the only write, and the daemon picks it up within ``daemon.admin_poll_s``).

A command that stops waiting (its ``--timeout``, or the daemon stopped) *withdraws* its request, so that no
later daemon carries it out unexpectedly hours later: :func:`withdraw_request` answers it as failed
(``{"error": "withdrawn: ..."}``) as long as no daemon has taken it. A daemon marks the requests it takes
(``taken_at``); one it took is answered by it, and the command waits for that answer instead.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from integration.store._records import RequestRecord
from integration.store._thread import DatabaseThread

__all__ = ["RequestRepository", "read_request", "request_from_row", "submit_request", "withdraw_request"]

_REQUEST_COLUMNS = "id, kind, body, requested_by, created_at, status, result, done_at"


def request_from_row(row: tuple[Any, ...]) -> RequestRecord:
    """A :class:`RequestRecord` from a row selected with the request columns."""
    return RequestRecord(
        id=row[0],
        kind=row[1],
        body=row[2],
        requested_by=row[3],
        created_at=row[4],
        status=row[5],
        result=row[6],
        done_at=row[7],
    )


def submit_request(database: Path, *, kind: str, body: str, requested_by: str) -> int:
    """Add a pending request for the running daemon (one short write transaction); returns its id."""
    with contextlib.closing(sqlite3.connect(database, timeout=10.0, isolation_level=None)) as connection:
        cursor = connection.execute(
            "INSERT INTO requests (kind, body, requested_by, created_at) VALUES (?,?,?,?)",
            (kind, body, requested_by, time.time()),
        )
        return int(cursor.lastrowid or 0)


def withdraw_request(
    database: Path, request_id: int, *, why: str = "its command stopped waiting", even_if_taken: bool = False
) -> bool:
    """Withdraw a request no daemon has taken yet; True if withdrawn, False if answered or taken meanwhile.

    It is then answered as failed with ``{"error": "withdrawn: <why>"}`` and no daemon will carry it out.
    ``even_if_taken`` also withdraws one a daemon took but never answered: only while holding the database
    lock (so no daemon runs, and the one that took it has stopped). Raises ``sqlite3.Error`` when the database
    cannot be written.
    """
    result = json.dumps({"error": f"withdrawn: {why}"})
    with contextlib.closing(sqlite3.connect(database, timeout=10.0, isolation_level=None)) as connection:
        cursor = connection.execute(
            "UPDATE requests SET status = 'failed', result = ?, done_at = ? "
            "WHERE id = ? AND status = 'pending' AND (taken_at IS NULL OR ?)",
            (result, time.time(), request_id, even_if_taken),
        )
        return cursor.rowcount == 1


def read_request(database: Path, request_id: int) -> RequestRecord | None:
    """The request as it is now (read-only connection)."""
    uri = f"file:{database}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=10.0)) as connection:
        row = connection.execute(f"SELECT {_REQUEST_COLUMNS} FROM requests WHERE id = ?", (request_id,)).fetchone()
    return None if row is None else request_from_row(row)


class RequestRepository:
    """Pending operator requests, as the daemon sees them."""

    def __init__(self, db: DatabaseThread, clock: Callable[[], float]) -> None:
        self._db = db
        self._clock = clock

    async def submit(self, *, kind: str, body: str, requested_by: str) -> int:
        """Add a pending request (what :func:`submit_request` does from another process)."""
        now = self._clock()

        def insert(connection: sqlite3.Connection) -> int:
            cursor = connection.execute(
                "INSERT INTO requests (kind, body, requested_by, created_at) VALUES (?,?,?,?)",
                (kind, body, requested_by, now),
            )
            return int(cursor.lastrowid or 0)

        return await self._db.call(insert)

    async def pending(self, *, limit: int = 20) -> list[RequestRecord]:
        """Take the requests not yet answered, oldest first (index ``requests_pending``).

        Taking marks them (``taken_at``), in the same transaction, so that their commands no longer withdraw
        them but wait for the answer. One taken by an earlier daemon that stopped before answering is taken
        again: a request survives a daemon crash unless its command withdrew it.
        """
        now = self._clock()

        def take(connection: sqlite3.Connection) -> list[RequestRecord]:
            rows = connection.execute(
                f"SELECT {_REQUEST_COLUMNS} FROM requests WHERE status = 'pending' ORDER BY id LIMIT ?", (limit,)
            ).fetchall()
            connection.executemany(
                "UPDATE requests SET taken_at = ? WHERE id = ? AND taken_at IS NULL", [(now, r[0]) for r in rows]
            )
            return [request_from_row(r) for r in rows]

        return await self._db.call(take)

    async def finish(self, request_id: int, *, ok: bool, result: str) -> None:
        """Record the answer to a request (one still pending: a withdrawn request keeps its answer)."""
        now = self._clock()
        await self._db.call(
            lambda c: c.execute(
                "UPDATE requests SET status = ?, result = ?, done_at = ? WHERE id = ? AND status = 'pending'",
                ("done" if ok else "failed", result, now, request_id),
            )
        )

    async def get(self, request_id: int) -> RequestRecord | None:
        """One request."""

        def query(connection: sqlite3.Connection) -> RequestRecord | None:
            row = connection.execute(f"SELECT {_REQUEST_COLUMNS} FROM requests WHERE id = ?", (request_id,)).fetchone()
            return None if row is None else request_from_row(row)

        return await self._db.call(query)
