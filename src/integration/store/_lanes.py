"""The lane repository: lanes (``ars``, ``intake``, ``storage``) and group holds, with their probe cycles.

A lane row says whether the lane is paused, why, since when, how often it was probed in vain and when it is
probed next; a group hold is the same for one group of assets (``hold:workstation:<i>/<w>``). Every change is
also an event of entity kind ``lane``, so a pause is explainable after the fact.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from integration.store._core import insert_event
from integration.store._records import LaneRecord
from integration.store._thread import DatabaseThread

__all__ = ["LaneRepository", "lane_from_row"]

_COLUMNS = "name, kind, paused, reason, since, probe, cycles, next_probe"


def lane_from_row(row: tuple[Any, ...]) -> LaneRecord:
    """A :class:`LaneRecord` from a row selected with the lane columns."""
    return LaneRecord(
        name=row[0],
        kind=row[1],
        paused=bool(row[2]),
        reason=row[3],
        since=row[4],
        probe=row[5],
        cycles=row[6],
        next_probe=row[7],
    )


class LaneRepository:
    """Persisted lane and hold states."""

    def __init__(self, db: DatabaseThread, clock: Callable[[], float]) -> None:
        self._db = db
        self._clock = clock

    async def save(self, lane: LaneRecord, *, event: str, actor: str) -> None:
        """Write ``lane`` as it is now and an event (``event`` is the trigger: pause, resume, probe_failed)."""
        now = self._clock()

        def write(connection: sqlite3.Connection) -> None:
            before = connection.execute("SELECT paused FROM lanes WHERE name = ?", (lane.name,)).fetchone()
            connection.execute(
                f"INSERT INTO lanes ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(name) DO UPDATE SET "
                "kind = excluded.kind, paused = excluded.paused, reason = excluded.reason, since = excluded.since, "
                "probe = excluded.probe, cycles = excluded.cycles, next_probe = excluded.next_probe",
                (
                    lane.name,
                    lane.kind,
                    int(lane.paused),
                    lane.reason,
                    lane.since,
                    lane.probe,
                    lane.cycles,
                    lane.next_probe,
                ),
            )
            insert_event(
                connection,
                entity_kind="lane",
                entity_id=lane.name,
                kind="transition" if before is None or bool(before[0]) != lane.paused else "note",
                from_state=None if before is None else ("paused" if before[0] else "open"),
                to_state="paused" if lane.paused else "open",
                trigger=event,
                reason=lane.reason or event,
                actor=actor,
                at=now,
            )

        await self._db.call(write)

    async def all(self) -> list[LaneRecord]:
        """Every lane and hold, by name."""

        def query(connection: sqlite3.Connection) -> list[LaneRecord]:
            rows = connection.execute(f"SELECT {_COLUMNS} FROM lanes ORDER BY name").fetchall()
            return [lane_from_row(r) for r in rows]

        return await self._db.call(query)

    async def delete(self, name: str) -> None:
        """Forget a released group hold (lanes themselves are kept, open or paused)."""
        await self._db.call(lambda c: c.execute("DELETE FROM lanes WHERE name = ? AND kind = 'group'", (name,)))
