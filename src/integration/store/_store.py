"""The track store: assets, their metadata and files, the append-only event log, rejections, lanes.

Every state change goes through :meth:`Store.transition`, which checks it against the pure state machine and
writes the new state and its event row in ONE transaction. Queries that find due work use indexes
(``assets_by_wake``, ``assets_by_state``); nothing here scans the whole table on a hot path.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import msgspec

from integration.domain import FileKind, FileRecord
from integration.errors import StateConflict
from integration.state_machines import AssetState, AssetTrigger, apply
from integration.store._schema import migrate
from integration.store._thread import DatabaseThread

__all__ = [
    "AssetRecord",
    "EventRecord",
    "NewAsset",
    "Rejection",
    "Store",
    "StoredFile",
    "open_store",
]

_ASSET_COLUMNS = (
    "guid, state, resume_state, pipeline, institution, collection, workstation, session, local_dir, "
    "allocation_mb, intent, resyncs, attempts, reason, next_wake, state_since, created_at, updated_at"
)


class AssetRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One row of the track: where an asset is and what it waits for."""

    guid: str
    state: AssetState
    resume_state: AssetState | None
    pipeline: str
    institution: str
    collection: str
    workstation: str
    session: str
    local_dir: str
    allocation_mb: int
    intent: str | None  # an external side effect started but not yet confirmed (settled by reconciling)
    resyncs: int
    attempts: int
    reason: str
    next_wake: float | None
    state_since: float
    created_at: float
    updated_at: float


class StoredFile(msgspec.Struct, frozen=True, kw_only=True):
    """A file of an asset as the store knows it."""

    record: FileRecord
    ndrive_path: str
    uploaded: bool


class NewAsset(msgspec.Struct, frozen=True, kw_only=True):
    """Everything recorded when an asset is ingested."""

    guid: str
    pipeline: str
    institution: str
    collection: str
    workstation: str
    session: str
    local_dir: str
    allocation_mb: int
    metadata_json: bytes
    files: tuple[tuple[FileRecord, str], ...]  # (record, N-Drive path)


class EventRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One row of the audit log."""

    id: int
    guid: str
    from_state: str | None
    to_state: str
    trigger: str
    reason: str
    actor: str
    at: float


class Rejection(msgspec.Struct, frozen=True, kw_only=True):
    """An intake rejection: a file or asset on the N-Drive that was not taken in, and why."""

    session: str
    name: str
    guid: str | None
    reason: str
    at: float


def _asset_from_row(row: tuple[Any, ...]) -> AssetRecord:
    return AssetRecord(
        guid=row[0],
        state=AssetState(row[1]),
        resume_state=AssetState(row[2]) if row[2] else None,
        pipeline=row[3],
        institution=row[4],
        collection=row[5],
        workstation=row[6],
        session=row[7],
        local_dir=row[8],
        allocation_mb=row[9],
        intent=row[10],
        resyncs=row[11],
        attempts=row[12],
        reason=row[13],
        next_wake=row[14],
        state_since=row[15],
        created_at=row[16],
        updated_at=row[17],
    )


def _get_asset(connection: sqlite3.Connection, guid: str) -> AssetRecord | None:
    row = connection.execute(f"SELECT {_ASSET_COLUMNS} FROM assets WHERE guid = ?", (guid,)).fetchone()
    return _asset_from_row(row) if row else None


_UPDATABLE = frozenset({"intent", "resyncs", "attempts", "next_wake", "allocation_mb"})


class Store:
    """Async façade over the database thread. Create it with :func:`open_store`."""

    def __init__(self, db: DatabaseThread, *, clock: Callable[[], float] = time.time) -> None:
        self._db = db
        self._clock = clock

    async def run(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run an arbitrary function on the database thread (for tests and one-off admin queries)."""
        return await self._db.call(fn)

    # -- writes ------------------------------------------------------------------------------------------

    async def record_ingested(self, asset: NewAsset, *, actor: str) -> AssetRecord:
        """Insert an ingested asset with its metadata, files and its first events, in one transaction.

        Raises :class:`StateConflict` if the GUID is already recorded.
        """
        now = self._clock()

        def insert(connection: sqlite3.Connection) -> AssetRecord:
            existing = _get_asset(connection, asset.guid)
            if existing is not None:
                raise StateConflict(guid=asset.guid, expected="(not recorded)", actual=existing.state.value)
            connection.execute(
                f"INSERT INTO assets ({_ASSET_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    asset.guid,
                    AssetState.INGESTED.value,
                    None,
                    asset.pipeline,
                    asset.institution,
                    asset.collection,
                    asset.workstation,
                    asset.session,
                    asset.local_dir,
                    asset.allocation_mb,
                    None,
                    0,
                    0,
                    "",
                    None,
                    now,
                    now,
                    now,
                ),
            )
            connection.execute("INSERT INTO metadata (guid, json) VALUES (?, ?)", (asset.guid, asset.metadata_json))
            connection.executemany(
                "INSERT INTO files (guid, name, kind, size, crc32, local_path, ndrive_path) VALUES (?,?,?,?,?,?,?)",
                [
                    (asset.guid, f.name, f.kind.value, f.size, f.crc32, f.local_path, ndrive)
                    for f, ndrive in asset.files
                ],
            )
            _insert_event(connection, asset.guid, None, AssetState.DETECTED, "detect", asset.session, actor, now)
            _insert_event(
                connection,
                asset.guid,
                AssetState.DETECTED,
                AssetState.INGESTED,
                AssetTrigger.INGEST.value,
                "copied to local storage, CRC-32 verified",
                actor,
                now,
            )
            record = _get_asset(connection, asset.guid)
            assert record is not None
            return record

        return await self._db.call(insert)

    async def transition(
        self,
        guid: str,
        trigger: AssetTrigger,
        *,
        expected: AssetState,
        reason: str,
        actor: str,
        updates: dict[str, Any] | None = None,
    ) -> AssetRecord:
        """Move ``guid`` by ``trigger`` and append its event, atomically.

        ``expected`` is the state the caller decided from; if the stored one differs, nothing is written and
        :class:`StateConflict` is raised. ``updates`` sets other columns (intent, next_wake, ...) in the same
        transaction. Raises :class:`~integration.errors.IllegalTransition` for a move the table forbids.
        """
        columns = dict(updates or {})
        unknown = set(columns) - _UPDATABLE
        if unknown:
            raise ValueError(f"cannot update columns {sorted(unknown)} through a transition")
        now = self._clock()

        def move(connection: sqlite3.Connection) -> AssetRecord:
            current = _get_asset(connection, guid)
            if current is None or current.state is not expected:
                raise StateConflict(guid=guid, expected=expected.value, actual=current.state.value if current else None)
            outcome = apply(current.state, trigger, reason=reason, resume_state=current.resume_state, guid=guid)
            columns.update(
                state=outcome.state.value,
                resume_state=outcome.resume_state.value if outcome.resume_state else None,
                reason=reason,
                state_since=now,
                updated_at=now,
            )
            assignments = ", ".join(f"{name} = ?" for name in columns)
            connection.execute(f"UPDATE assets SET {assignments} WHERE guid = ?", (*columns.values(), guid))
            _insert_event(connection, guid, current.state, outcome.state, trigger.value, reason, actor, now)
            record = _get_asset(connection, guid)
            assert record is not None
            return record

        return await self._db.call(move)

    async def update(self, guid: str, *, expected: AssetState, **columns: Any) -> None:
        """Set bookkeeping columns (intent, next_wake, attempts, ...) without a state change.

        Raises :class:`StateConflict` if the asset is no longer in ``expected``.
        """
        unknown = set(columns) - _UPDATABLE
        if unknown:
            raise ValueError(f"cannot update columns {sorted(unknown)}")
        now = self._clock()

        def set_columns(connection: sqlite3.Connection) -> None:
            assignments = ", ".join(f"{name} = ?" for name in columns)
            cursor = connection.execute(
                f"UPDATE assets SET {assignments}, updated_at = ? WHERE guid = ? AND state = ?",
                (*columns.values(), now, guid, expected.value),
            )
            if cursor.rowcount != 1:
                actual = _get_asset(connection, guid)
                raise StateConflict(guid=guid, expected=expected.value, actual=actual.state.value if actual else None)

        await self._db.call(set_columns)

    async def mark_uploaded(self, guid: str, name: str) -> None:
        """Record that ``name`` of ``guid`` is in the ARS share with our CRC-32."""
        await self._db.call(
            lambda c: c.execute("UPDATE files SET uploaded = 1 WHERE guid = ? AND name = ?", (guid, name))
        )

    async def record_rejection(self, rejection: Rejection) -> bool:
        """Remember an intake rejection; False when the same (session, name) was already recorded."""

        def insert(connection: sqlite3.Connection) -> bool:
            cursor = connection.execute(
                "INSERT OR IGNORE INTO rejections (session, name, guid, reason, at) VALUES (?,?,?,?,?)",
                (rejection.session, rejection.name, rejection.guid, rejection.reason, rejection.at),
            )
            return cursor.rowcount == 1

        return await self._db.call(insert)

    async def record_session(self, path: str, *, workstation: str, status: str, assets: int, rejected: int) -> None:
        """Record what happened to a session folder (``imported``)."""
        now = self._clock()
        await self._db.call(
            lambda c: c.execute(
                "INSERT INTO sessions (path, workstation, status, assets, rejected, at) VALUES (?,?,?,?,?,?) "
                "ON CONFLICT(path) DO UPDATE SET status = excluded.status, assets = excluded.assets, "
                "rejected = excluded.rejected, at = excluded.at",
                (path, workstation, status, assets, rejected, now),
            )
        )

    async def set_lane(self, name: str, *, paused: bool, reason: str) -> None:
        """Persist a lane's state (shown by ``integration status``)."""
        now = self._clock()
        await self._db.call(
            lambda c: c.execute(
                "INSERT INTO lanes (name, paused, reason, since) VALUES (?,?,?,?) ON CONFLICT(name) DO UPDATE "
                "SET paused = excluded.paused, reason = excluded.reason, since = excluded.since",
                (name, int(paused), reason, now),
            )
        )

    # -- reads -------------------------------------------------------------------------------------------

    async def asset(self, guid: str) -> AssetRecord | None:
        """The asset's row, or None."""
        result: AssetRecord | None = await self._db.call(lambda c: _get_asset(c, guid))
        return result

    async def files(self, guid: str) -> list[StoredFile]:
        """The asset's files, image first."""

        def query(connection: sqlite3.Connection) -> list[StoredFile]:
            rows = connection.execute(
                "SELECT name, kind, size, crc32, local_path, ndrive_path, uploaded FROM files WHERE guid = ? "
                "ORDER BY CASE kind WHEN 'image' THEN 0 WHEN 'raw' THEN 1 ELSE 2 END, name",
                (guid,),
            ).fetchall()
            return [
                StoredFile(
                    record=FileRecord(name=r[0], kind=FileKind(r[1]), size=r[2], crc32=r[3], local_path=r[4]),
                    ndrive_path=r[5],
                    uploaded=bool(r[6]),
                )
                for r in rows
            ]

        return await self._db.call(query)

    async def metadata_json(self, guid: str) -> bytes | None:
        """The metadata JSON as recorded at intake (unknown fields included)."""

        def query(connection: sqlite3.Connection) -> bytes | None:
            row = connection.execute("SELECT json FROM metadata WHERE guid = ?", (guid,)).fetchone()
            return bytes(row[0]) if row else None

        return await self._db.call(query)

    async def assets_in(self, states: Iterable[AssetState], *, limit: int = 100_000) -> list[AssetRecord]:
        """Assets in any of ``states`` (index ``assets_by_state``), oldest first."""
        values = [s.value for s in states]
        marks = ",".join("?" * len(values))

        def query(connection: sqlite3.Connection) -> list[AssetRecord]:
            rows = connection.execute(
                f"SELECT {_ASSET_COLUMNS} FROM assets WHERE state IN ({marks}) ORDER BY created_at LIMIT ?",
                (*values, limit),
            ).fetchall()
            return [_asset_from_row(r) for r in rows]

        return await self._db.call(query)

    async def due(self, now: float, *, limit: int = 500) -> list[AssetRecord]:
        """Assets whose wake-up time has come (index ``assets_by_wake``), earliest first."""

        def query(connection: sqlite3.Connection) -> list[AssetRecord]:
            rows = connection.execute(
                f"SELECT {_ASSET_COLUMNS} FROM assets WHERE next_wake IS NOT NULL AND next_wake <= ? "
                "ORDER BY next_wake LIMIT ?",
                (now, limit),
            ).fetchall()
            return [_asset_from_row(r) for r in rows]

        return await self._db.call(query)

    async def next_wake(self) -> float | None:
        """The earliest scheduled wake-up, or None."""
        result: float | None = await self._db.call(
            lambda c: c.execute("SELECT MIN(next_wake) FROM assets WHERE next_wake IS NOT NULL").fetchone()[0]
        )
        return result

    async def events(self, guid: str) -> list[EventRecord]:
        """The asset's audit log, oldest first."""

        def query(connection: sqlite3.Connection) -> list[EventRecord]:
            rows = connection.execute(
                "SELECT id, guid, from_state, to_state, trigger, reason, actor, at FROM events "
                "WHERE guid = ? ORDER BY id",
                (guid,),
            ).fetchall()
            return [
                EventRecord(
                    id=r[0], guid=r[1], from_state=r[2], to_state=r[3], trigger=r[4], reason=r[5], actor=r[6], at=r[7]
                )
                for r in rows
            ]

        return await self._db.call(query)

    async def counts_by_state(self) -> dict[str, int]:
        """How many assets are in each state."""

        def query(connection: sqlite3.Connection) -> dict[str, int]:
            rows = connection.execute("SELECT state, COUNT(*) FROM assets GROUP BY state").fetchall()
            return {str(state): int(count) for state, count in rows}

        return await self._db.call(query)

    async def rejections(self, *, limit: int = 1000) -> list[Rejection]:
        """Intake rejections, newest first."""

        def query(connection: sqlite3.Connection) -> list[Rejection]:
            rows = connection.execute(
                "SELECT session, name, guid, reason, at FROM rejections ORDER BY id DESC LIMIT ?", (limit,)
            ).fetchall()
            return [Rejection(session=r[0], name=r[1], guid=r[2], reason=r[3], at=r[4]) for r in rows]

        return await self._db.call(query)

    async def lanes(self) -> dict[str, tuple[bool, str, float]]:
        """Persisted lane states: name -> (paused, reason, since)."""

        def query(connection: sqlite3.Connection) -> dict[str, tuple[bool, str, float]]:
            rows = connection.execute("SELECT name, paused, reason, since FROM lanes").fetchall()
            return {r[0]: (bool(r[1]), r[2], r[3]) for r in rows}

        return await self._db.call(query)

    def statistics(self) -> dict[str, int]:
        """Calls and transactions run so far (calls / transactions = the group-commit factor)."""
        return {"calls": self._db.calls, "transactions": self._db.transactions}


def _insert_event(
    connection: sqlite3.Connection,
    guid: str,
    from_state: AssetState | None,
    to_state: AssetState,
    trigger: str,
    reason: str,
    actor: str,
    at: float,
) -> None:
    connection.execute(
        "INSERT INTO events (guid, from_state, to_state, trigger, reason, actor, at) VALUES (?,?,?,?,?,?,?)",
        (guid, from_state.value if from_state else None, to_state.value, trigger, reason, actor, at),
    )


@asynccontextmanager
async def open_store(path: Path, *, clock: Callable[[], float] = time.time) -> AsyncIterator[Store]:
    """Open (creating and migrating as needed) the store at ``path``; closes it on exit."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = DatabaseThread(path)
    db.start()
    try:
        await db.call(migrate)
        yield Store(db, clock=clock)
    finally:
        db.stop()
