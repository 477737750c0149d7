"""The daemon's actors as ``integration status`` sees them: heartbeats, restarts and the last crash."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterable
from typing import Any

from integration.store._records import ActorRecord
from integration.store._thread import DatabaseThread

__all__ = ["ACTOR_COLUMNS", "ActorRepository", "actor_from_row"]

ACTOR_COLUMNS = "name, pid, started_at, beat_at, restarts, last_error, last_error_at"


def actor_from_row(row: tuple[Any, ...]) -> ActorRecord:
    """An :class:`ActorRecord` from a row selected with the actor columns."""
    return ActorRecord(
        name=row[0],
        pid=row[1],
        started_at=row[2],
        beat_at=row[3],
        restarts=row[4],
        last_error=row[5],
        last_error_at=row[6],
    )


class ActorRepository:
    """Heartbeats and crash records of the daemon's actors."""

    def __init__(self, db: DatabaseThread, clock: Callable[[], float]) -> None:
        self._db = db
        self._clock = clock

    async def beat(self, beats: Iterable[tuple[str, float, int, str, float | None]], *, started_at: float) -> None:
        """Write (name, last beat, restarts, last error, last error time) of each actor of this process."""
        pid = os.getpid()
        rows = [(name, pid, started_at, at, restarts, error, error_at) for name, at, restarts, error, error_at in beats]

        def write(connection: sqlite3.Connection) -> None:
            connection.executemany(
                f"INSERT INTO actors ({ACTOR_COLUMNS}) VALUES (?,?,?,?,?,?,?) ON CONFLICT(name) DO UPDATE SET "
                "pid = excluded.pid, started_at = excluded.started_at, beat_at = excluded.beat_at, "
                "restarts = excluded.restarts, last_error = excluded.last_error, "
                "last_error_at = excluded.last_error_at",
                rows,
            )

        await self._db.call(write)

    async def all(self) -> list[ActorRecord]:
        """Every actor's last record."""

        def query(connection: sqlite3.Connection) -> list[ActorRecord]:
            rows = connection.execute(f"SELECT {ACTOR_COLUMNS} FROM actors ORDER BY name").fetchall()
            return [actor_from_row(r) for r in rows]

        return await self._db.call(query)
