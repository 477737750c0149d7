"""Wake-ups across entities: what is due, what waits for a lane, and waking those when it reopens.

Each entity has at most one wake-up (written by its repository together with its state); the queries here
find due work through the ``wakeups_due`` and ``wakeups_by_lane`` indexes, so their cost follows the work that
is due, never the number of assets stored.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable

import msgspec

from integration.state_machines import AssetState
from integration.store._records import WakeKind
from integration.store._thread import DatabaseThread

__all__ = ["DueWake", "WakeupRepository"]


class DueWake(msgspec.Struct, frozen=True):
    """An entity whose wake-up is due (or waits on a lane), as the queries here return it."""

    entity_kind: str
    entity_id: str
    due: float | None


class WakeupRepository:
    """Queries and bulk changes over every entity's wake-up."""

    def __init__(self, db: DatabaseThread, clock: Callable[[], float]) -> None:
        self._db = db
        self._clock = clock

    async def due(self, kind: WakeKind, *, now: float, limit: int = 500) -> list[DueWake]:
        """Wake-ups of ``kind`` whose time has come, earliest first (index ``wakeups_due``)."""

        def query(connection: sqlite3.Connection) -> list[DueWake]:
            rows = connection.execute(
                "SELECT entity_kind, entity_id, due FROM wakeups WHERE kind = ? AND due IS NOT NULL AND due <= ? "
                "ORDER BY due LIMIT ?",
                (kind, now, limit),
            ).fetchall()
            return [DueWake(*row) for row in rows]

        return await self._db.call(query)

    async def next_due(self, kind: WakeKind) -> float | None:
        """The earliest wake-up time of ``kind``, or None."""

        def query(connection: sqlite3.Connection) -> float | None:
            row = connection.execute(
                "SELECT MIN(due) FROM wakeups WHERE kind = ? AND due IS NOT NULL", (kind,)
            ).fetchone()
            return None if row[0] is None else float(row[0])

        return await self._db.call(query)

    async def clear_if_unchanged(self, wake: DueWake, kind: WakeKind) -> bool:
        """Remove the wake-up ``wake`` of ``kind`` unless it was replaced meanwhile; True if removed."""

        def delete(connection: sqlite3.Connection) -> bool:
            cursor = connection.execute(
                "DELETE FROM wakeups WHERE entity_kind = ? AND entity_id = ? AND kind = ? AND due IS ?",
                (wake.entity_kind, wake.entity_id, kind, wake.due),
            )
            return cursor.rowcount == 1

        return await self._db.call(delete)

    async def waiting(self, lane: str, *, limit: int = 1) -> list[str]:
        """Ids of entities waiting for ``lane`` (a lane or a group hold), oldest wait first."""

        def query(connection: sqlite3.Connection) -> list[str]:
            rows = connection.execute(
                "SELECT entity_id FROM wakeups WHERE lane = ? ORDER BY rowid LIMIT ?", (lane, limit)
            ).fetchall()
            return [str(r[0]) for r in rows]

        return await self._db.call(query)

    async def count_waiting(self) -> dict[str, int]:
        """How many entities wait for each lane or group hold."""

        def query(connection: sqlite3.Connection) -> dict[str, int]:
            rows = connection.execute(
                "SELECT lane, COUNT(*) FROM wakeups WHERE lane IS NOT NULL GROUP BY lane"
            ).fetchall()
            return {str(lane): int(count) for lane, count in rows}

        return await self._db.call(query)

    async def release(self, lane: str, *, reason: str) -> int:
        """Everything waiting for ``lane`` becomes due for dispatch now; returns how many."""
        now = self._clock()

        def update(connection: sqlite3.Connection) -> int:
            cursor = connection.execute(
                "UPDATE wakeups SET kind = 'dispatch', due = ?, lane = NULL, reason = ? WHERE lane = ?",
                (now, reason, lane),
            )
            return cursor.rowcount

        return await self._db.call(update)

    async def wake_now(self, guid: str, *, reason: str) -> None:
        """Make the asset ``guid`` due for dispatch now (replacing any other wake-up it had)."""
        now = self._clock()
        await self._db.call(
            lambda c: c.execute(
                "INSERT INTO wakeups (entity_kind, entity_id, kind, due, lane, reason) "
                "VALUES ('asset', ?, 'dispatch', ?, NULL, ?) ON CONFLICT(entity_kind, entity_id) DO UPDATE SET "
                "kind = 'dispatch', due = excluded.due, lane = NULL, reason = excluded.reason",
                (guid, now, reason),
            )
        )

    async def resume_all(
        self,
        *,
        drivable: Iterable[AssetState],
        polled: Iterable[AssetState],
        paused_lanes: Iterable[str],
        look_again: Iterable[AssetState] = (),
    ) -> tuple[int, int, int]:
        """After a (re)start: every asset that can move gets a wake-up, however many there are.

        Assets in a ``drivable`` state without a wake-up become due for dispatch now; those in a ``polled``
        state without one are polled now; waits on any lane or hold that is not in ``paused_lanes`` are released
        (a wait must never outlive its lane); assets in a ``look_again`` state (processing: their jobs died with
        the last daemon, or the executor changed) are due now whatever their wake-up said. Returns
        (dispatch, polls, released).
        """
        now = self._clock()
        drive = [s.value for s in drivable]
        poll = [s.value for s in polled]
        paused = list(paused_lanes)
        again = [s.value for s in look_again]

        def update(connection: sqlite3.Connection) -> tuple[int, int, int]:
            counts = []
            for kind, states in (("dispatch", drive), ("sync_poll", poll)):
                marks = ",".join("?" * len(states))
                cursor = connection.execute(
                    "INSERT INTO wakeups (entity_kind, entity_id, kind, due, lane, reason) "
                    f"SELECT 'asset', guid, ?, ?, NULL, 'resumed after a (re)start' FROM assets "
                    f"WHERE state IN ({marks}) AND NOT EXISTS (SELECT 1 FROM wakeups w "
                    "WHERE w.entity_kind = 'asset' AND w.entity_id = assets.guid)",
                    (kind, now, *states),
                )
                counts.append(cursor.rowcount)
            marks = ",".join("?" * len(paused))
            released = connection.execute(
                "UPDATE wakeups SET kind = 'dispatch', due = ?, lane = NULL, reason = 'its lane is open' "
                f"WHERE lane IS NOT NULL AND lane NOT IN ({marks})",
                (now, *paused),
            ).rowcount
            if again:
                marks = ",".join("?" * len(again))
                released += connection.execute(
                    "UPDATE wakeups SET due = ? WHERE kind = 'dispatch' AND due > ? AND entity_kind = 'asset' AND "
                    f"entity_id IN (SELECT guid FROM assets WHERE state IN ({marks}))",
                    (now, now, *again),
                ).rowcount
            return counts[0], counts[1], released

        return await self._db.call(update)
