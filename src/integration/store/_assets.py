"""The asset repository: parent assets, their metadata and files, and every change to them.

Every state change goes through :meth:`AssetRepository.transition`, which checks it against the pure machine
and writes the new state, its event, the asset's new wake-up (a transition ends the old wait) and, when
given, the settled intent, in ONE transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from typing import Any

from integration.domain import FileKind, FileRecord
from integration.errors import StateConflict
from integration.state_machines import ASSET_MACHINE, AssetState, AssetTrigger
from integration.store._core import (
    EVENT_COLUMNS,
    clear_wake,
    event_from_row,
    insert_event,
    open_intent,
    set_wake,
    settle_intent,
)
from integration.store._records import AssetRecord, EventRecord, NewAsset, StoredFile, Wake
from integration.store._thread import DatabaseThread

__all__ = ["KEEP", "AssetRepository", "Keep"]

_KIND = "asset"
_COLUMNS = (
    "guid, state, resume_state, pipeline, institution, collection, workstation, session, local_dir, "
    "allocation_mb, resyncs, attempts, crc_mismatches, reason, in_ars, waiting_since, state_since, created_at, "
    "updated_at"
)
_SELECT = (
    f"SELECT {', '.join('a.' + c.strip() for c in _COLUMNS.split(','))}, w.kind, w.due, w.lane, w.reason, "
    "(SELECT group_concat(operation, ' ') FROM intents i WHERE i.entity_kind = 'asset' AND i.entity_id = a.guid) "
    "FROM assets a LEFT JOIN wakeups w ON w.entity_kind = 'asset' AND w.entity_id = a.guid"
)
#: Bookkeeping columns a caller may set (with or without a transition); everything else is the store's.
_UPDATABLE = frozenset({"resyncs", "attempts", "crc_mismatches", "allocation_mb", "in_ars", "waiting_since", "reason"})


class Keep:
    """Marker: leave the asset's wake-up as it is."""


KEEP = Keep()


def _record(row: tuple[Any, ...]) -> AssetRecord:
    wake = None if row[19] is None else Wake(kind=row[19], due=row[20], lane=row[21], reason=row[22])
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
        resyncs=row[10],
        attempts=row[11],
        crc_mismatches=row[12],
        reason=row[13],
        in_ars=bool(row[14]),
        waiting_since=row[15],
        state_since=row[16],
        created_at=row[17],
        updated_at=row[18],
        intents=frozenset(row[23].split()) if row[23] else frozenset(),
        wake=wake,
    )


def get_asset(connection: sqlite3.Connection, guid: str) -> AssetRecord | None:
    """The asset's row with its wake-up and open intents, or None."""
    row = connection.execute(f"{_SELECT} WHERE a.guid = ?", (guid,)).fetchone()
    return _record(row) if row else None


def _current(connection: sqlite3.Connection, guid: str, expected: AssetState | None) -> AssetRecord:
    current = get_asset(connection, guid)
    if current is None or (expected is not None and current.state is not expected):
        raise StateConflict(
            guid=guid,
            expected=expected.value if expected else "(any)",
            actual=current.state.value if current else None,
        )
    return current


def _set_columns(connection: sqlite3.Connection, guid: str, columns: dict[str, Any]) -> None:
    unknown = set(columns) - _UPDATABLE - {"state", "resume_state", "state_since", "updated_at"}
    if unknown:
        raise ValueError(f"cannot set asset columns {sorted(unknown)}")
    if columns:
        assignments = ", ".join(f"{name} = ?" for name in columns)
        connection.execute(f"UPDATE assets SET {assignments} WHERE guid = ?", (*columns.values(), guid))


def _insert_files(connection: sqlite3.Connection, guid: str, files: Iterable[tuple[FileRecord, str]]) -> None:
    connection.executemany(
        "INSERT INTO files (guid, name, kind, size, crc32, local_path, ndrive_path, mtime_ns) VALUES (?,?,?,?,?,?,?,?) "
        "ON CONFLICT(guid, name) DO UPDATE SET kind = excluded.kind, size = excluded.size, crc32 = excluded.crc32, "
        "local_path = excluded.local_path, ndrive_path = excluded.ndrive_path, mtime_ns = excluded.mtime_ns, "
        "uploaded = 0",
        [(guid, f.name, f.kind.value, f.size, f.crc32, f.local_path, ndrive, f.mtime_ns) for f, ndrive in files],
    )


def _open(
    connection: sqlite3.Connection, guid: str, state: str, operation: str, *, actor: str, at: float, detail: str = ""
) -> None:
    """Open the asset's ``operation`` intent (see :func:`~integration.store._core.open_intent`)."""
    open_intent(
        connection,
        entity_kind=_KIND,
        entity_id=guid,
        state=state,
        operation=operation,
        actor=actor,
        at=at,
        detail=detail,
    )


def _settle(
    connection: sqlite3.Connection, guid: str, state: str, operation: str, outcome: str, *, actor: str, at: float
) -> bool:
    """Close the asset's ``operation`` intent with ``outcome`` (see :func:`~integration.store._core.settle_intent`)."""
    return settle_intent(
        connection,
        entity_kind=_KIND,
        entity_id=guid,
        state=state,
        operation=operation,
        outcome=outcome,
        actor=actor,
        at=at,
    )


def _set_uploaded(connection: sqlite3.Connection, guid: str, names: list[str]) -> None:
    connection.execute("UPDATE files SET uploaded = 0 WHERE guid = ?", (guid,))
    connection.executemany("UPDATE files SET uploaded = 1 WHERE guid = ? AND name = ?", [(guid, n) for n in names])


def _resolve_rejections(connection: sqlite3.Connection, guid: str, session: str, at: float) -> None:
    connection.execute(
        "UPDATE rejections SET status = 'resolved', closed_at = ?, closed_reason = ? "
        "WHERE guid = ? AND status = 'open' AND kind IN ('intake', 'storage')",
        (at, f"imported from {session}", guid),
    )


class AssetRepository:
    """Parent assets on the database thread; create it through :class:`~integration.store.Store`."""

    def __init__(self, db: DatabaseThread, clock: Callable[[], float]) -> None:
        self._db = db
        self._clock = clock

    # -- writes ------------------------------------------------------------------------------------------

    async def record_ingested(self, asset: NewAsset, *, actor: str) -> AssetRecord:
        """Insert an ingested asset with its metadata, files and its first events, in one transaction.

        Open rejections of the same GUID are resolved by it. Raises :class:`StateConflict` if the GUID is
        already recorded.
        """
        now = self._clock()

        def insert(connection: sqlite3.Connection) -> AssetRecord:
            existing = get_asset(connection, asset.guid)
            if existing is not None:
                raise StateConflict(guid=asset.guid, expected="(not recorded)", actual=existing.state.value)
            detected = ASSET_MACHINE.apply(None, AssetTrigger.DETECT, entity=asset.guid).state
            ingested = ASSET_MACHINE.apply(detected, AssetTrigger.INGEST, entity=asset.guid).state
            connection.execute(
                "INSERT INTO assets (guid, state, pipeline, institution, collection, workstation, session, "
                "local_dir, allocation_mb, state_since, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    asset.guid,
                    ingested.value,
                    asset.pipeline,
                    asset.institution,
                    asset.collection,
                    asset.workstation,
                    asset.session,
                    asset.local_dir,
                    asset.allocation_mb,
                    now,
                    now,
                    now,
                ),
            )
            connection.execute("INSERT INTO metadata (guid, json) VALUES (?, ?)", (asset.guid, asset.metadata_json))
            _insert_files(connection, asset.guid, asset.files)
            for from_state, to_state, trigger, reason in (
                (None, detected, AssetTrigger.DETECT, f"found in {asset.session}"),
                (detected, ingested, AssetTrigger.INGEST, "copied to local storage, CRC-32 verified"),
            ):
                insert_event(
                    connection,
                    entity_kind=_KIND,
                    entity_id=asset.guid,
                    kind="transition",
                    from_state=from_state.value if from_state else None,
                    to_state=to_state.value,
                    trigger=trigger.value,
                    reason=reason,
                    actor=actor,
                    at=now,
                )
            _resolve_rejections(connection, asset.guid, asset.session, now)
            return _current(connection, asset.guid, None)

        return await self._db.call(insert)

    async def redeliver(
        self, asset: NewAsset, *, expected: AssetState, actor: str, intents: tuple[str, ...] = ()
    ) -> AssetRecord:
        """Replace a quarantined/failed asset's files and metadata by a corrected delivery, and start it over.

        The old file rows are replaced by the new ones (none marked uploaded), the asset goes back to
        ``ingested`` with its counters reset, and the replacement is recorded as an event listing the files.
        ``intents`` are opened in the same transaction: what the asset actor must still do about what ARS
        already holds (replace its metadata, drop files that are no longer ours).
        """
        now = self._clock()

        def replace(connection: sqlite3.Connection) -> AssetRecord:
            current = _current(connection, asset.guid, expected)
            old = [r[0] for r in connection.execute("SELECT name FROM files WHERE guid = ?", (asset.guid,))]
            connection.execute("DELETE FROM files WHERE guid = ?", (asset.guid,))
            _insert_files(connection, asset.guid, asset.files)
            connection.execute("UPDATE metadata SET json = ? WHERE guid = ?", (asset.metadata_json, asset.guid))
            connection.execute(
                "UPDATE assets SET pipeline = ?, institution = ?, collection = ?, workstation = ?, session = ?, "
                "local_dir = ?, allocation_mb = ? WHERE guid = ?",
                (
                    asset.pipeline,
                    asset.institution,
                    asset.collection,
                    asset.workstation,
                    asset.session,
                    asset.local_dir,
                    asset.allocation_mb,
                    asset.guid,
                ),
            )
            new = ", ".join(f.name for f, _ in asset.files)
            reason = f"corrected delivery from {asset.session} replaced the files ({', '.join(old)}) by ({new})"
            moved = _transition(
                connection,
                current,
                AssetTrigger.REDELIVER,
                reason=reason,
                actor=actor,
                now=now,
                columns={"attempts": 0, "crc_mismatches": 0, "resyncs": 0},
                wake=None,
            )
            _resolve_rejections(connection, asset.guid, asset.session, now)
            for operation in intents:
                _open(
                    connection,
                    asset.guid,
                    moved.state.value,
                    operation,
                    actor=actor,
                    at=now,
                    detail="the corrected delivery replaces what ARS holds",
                )
            return _current(connection, asset.guid, None) if intents else moved

        return await self._db.call(replace)

    async def transition(
        self,
        guid: str,
        trigger: AssetTrigger,
        *,
        expected: AssetState,
        reason: str,
        actor: str,
        updates: dict[str, Any] | None = None,
        wake: Wake | None = None,
        settle: tuple[str, str] | None = None,
        uploaded: Iterable[str] | None = None,
        then_open: str | None = None,
    ) -> AssetRecord:
        """Move ``guid`` by ``trigger`` and append its event, atomically; returns the row as written.

        ``expected`` is the state the caller decided from; if the stored one differs, nothing is written and
        :class:`StateConflict` is raised. ``updates`` sets bookkeeping columns in the same transaction; the
        asset's wake-up becomes ``wake`` (a new state ends the old wait); ``settle`` = (operation, outcome)
        closes that intent with its outcome event; ``uploaded`` makes those names exactly the files recorded
        as in ARS (see :meth:`set_uploaded`); ``then_open`` opens that intent in the new state. Raises
        :class:`~integration.errors.IllegalTransition` for a move the table forbids.
        """
        now = self._clock()
        held = None if uploaded is None else sorted(set(uploaded))

        def move(connection: sqlite3.Connection) -> AssetRecord:
            current = _current(connection, guid, expected)
            if held is not None:
                _set_uploaded(connection, guid, held)
            if settle is not None:
                operation, outcome = settle
                _settle(connection, guid, current.state.value, operation, outcome, actor=actor, at=now)
            moved = _transition(
                connection, current, trigger, reason=reason, actor=actor, now=now, columns=updates or {}, wake=wake
            )
            if then_open is None:
                return moved
            _open(connection, guid, moved.state.value, then_open, actor=actor, at=now)
            return _current(connection, guid, None)

        return await self._db.call(move)

    async def update(
        self, guid: str, *, expected: AssetState, wake: Wake | Keep | None = KEEP, **columns: Any
    ) -> AssetRecord:
        """Set bookkeeping columns and/or the wake-up without a state change; returns the row as written.

        Raises :class:`StateConflict` if the asset is no longer in ``expected``.
        """
        now = self._clock()

        def set_columns(connection: sqlite3.Connection) -> AssetRecord:
            _current(connection, guid, expected)
            _set_columns(connection, guid, {**columns, "updated_at": now})
            if isinstance(wake, Wake):
                set_wake(connection, _KIND, guid, wake)
            elif wake is None:
                clear_wake(connection, _KIND, guid)
            return _current(connection, guid, None)

        return await self._db.call(set_columns)

    async def open_intent(
        self, guid: str, operation: str, *, expected: AssetState, actor: str, detail: str = ""
    ) -> AssetRecord:
        """Persist that ``operation`` is about to happen (an event too); returns the row as written.

        Call it before the side effect; the transition recording the outcome settles it. Raises
        :class:`StateConflict` if the asset is no longer in ``expected``.
        """
        now = self._clock()

        def start(connection: sqlite3.Connection) -> AssetRecord:
            current = _current(connection, guid, expected)
            _open(connection, guid, current.state.value, operation, actor=actor, at=now, detail=detail)
            return _current(connection, guid, None)

        return await self._db.call(start)

    async def settle_intent(self, guid: str, operation: str, outcome: str, *, actor: str) -> bool:
        """Close ``operation``'s intent with its outcome (an event) without a state change."""
        now = self._clock()

        def settle(connection: sqlite3.Connection) -> bool:
            current = _current(connection, guid, None)
            return _settle(connection, guid, current.state.value, operation, outcome, actor=actor, at=now)

        return await self._db.call(settle)

    async def note(self, guid: str, reason: str, *, actor: str, trigger: str = "note") -> None:
        """Record something that happened to the asset without a state change (an event of kind ``note``)."""
        now = self._clock()

        def write(connection: sqlite3.Connection) -> None:
            current = _current(connection, guid, None)
            insert_event(
                connection,
                entity_kind=_KIND,
                entity_id=guid,
                kind="note",
                from_state=current.state.value,
                to_state=current.state.value,
                trigger=trigger,
                reason=reason,
                actor=actor,
                at=now,
            )

        await self._db.call(write)

    async def mark_uploaded(self, guid: str, name: str) -> None:
        """Record that ``name`` of ``guid`` is in the ARS share with our CRC-32."""
        await self._db.call(
            lambda c: c.execute("UPDATE files SET uploaded = 1 WHERE guid = ? AND name = ?", (guid, name))
        )

    async def set_uploaded(self, guid: str, names: Iterable[str]) -> None:
        """Make ``names`` exactly the files of ``guid`` recorded as being in ARS with our CRC-32."""
        held = sorted(set(names))
        await self._db.call(lambda c: _set_uploaded(c, guid, held))

    async def add_late_file(
        self,
        guid: str,
        file: FileRecord,
        ndrive_path: str,
        *,
        allocation_mb: int,
        actor: str,
        metadata: NewAsset | None = None,
    ) -> bool:
        """Add (or replace) a file that arrived after the asset was imported, if nothing was sent to ARS yet.

        Done only while the asset is ``ingested`` with no intent open (its create has not started), in one
        transaction with the new allocation and an event; returns False otherwise (the caller rejects it). A
        late metadata JSON comes with ``metadata`` (the asset as that JSON describes it), whose metadata and
        institution, collection, workstation and pipeline replace the recorded ones in the same transaction.
        """
        now = self._clock()

        def add(connection: sqlite3.Connection) -> bool:
            current = get_asset(connection, guid)
            if current is None or current.state is not AssetState.INGESTED or current.intents:
                return False
            _insert_files(connection, guid, [(file, ndrive_path)])
            _set_columns(connection, guid, {"allocation_mb": allocation_mb, "updated_at": now})
            if metadata is not None:
                connection.execute("UPDATE metadata SET json = ? WHERE guid = ?", (metadata.metadata_json, guid))
                connection.execute(
                    "UPDATE assets SET pipeline = ?, institution = ?, collection = ?, workstation = ? WHERE guid = ?",
                    (metadata.pipeline, metadata.institution, metadata.collection, metadata.workstation, guid),
                )
            insert_event(
                connection,
                entity_kind=_KIND,
                entity_id=guid,
                kind="note",
                from_state=current.state.value,
                to_state=current.state.value,
                trigger="file_added",
                reason=f"{file.name} arrived (or changed) after the import and was taken in ({file.size} bytes)"
                + ("; its metadata replaces the recorded one" if metadata is not None else ""),
                actor=actor,
                at=now,
            )
            return True

        return await self._db.call(add)

    # -- reads -------------------------------------------------------------------------------------------

    async def get(self, guid: str) -> AssetRecord | None:
        """The asset's row (with its wake-up and open intents), or None."""
        result: AssetRecord | None = await self._db.call(lambda c: get_asset(c, guid))
        return result

    async def files(self, guid: str) -> list[StoredFile]:
        """The asset's files, image first."""
        return await self._db.call(lambda c: files_of(c, guid))

    async def metadata_json(self, guid: str) -> bytes | None:
        """The metadata JSON as recorded at intake (unknown fields included)."""

        def query(connection: sqlite3.Connection) -> bytes | None:
            row = connection.execute("SELECT json FROM metadata WHERE guid = ?", (guid,)).fetchone()
            return bytes(row[0]) if row else None

        return await self._db.call(query)

    async def in_states(self, states: Iterable[AssetState], *, after: str = "", limit: int = 1000) -> list[AssetRecord]:
        """A page of the assets in any of ``states``, by GUID, starting after ``after`` (keyset paging)."""
        values = [s.value for s in states]
        marks = ",".join("?" * len(values))

        def query(connection: sqlite3.Connection) -> list[AssetRecord]:
            rows = connection.execute(
                f"{_SELECT} WHERE a.state IN ({marks}) AND a.guid > ? ORDER BY a.guid LIMIT ?",
                (*values, after, limit),
            ).fetchall()
            return [_record(r) for r in rows]

        return await self._db.call(query)

    async def load(self, states: Iterable[AssetState]) -> tuple[int, int]:
        """How many assets are in ``states`` (or paused in one), and the sum of their allocations in MB."""
        wanted = [state.value for state in states]
        result: tuple[int, int] = await self._db.call(lambda connection: load_of(connection, wanted))
        return result

    async def counts_by_state(self, guids: Iterable[str] | None = None) -> dict[str, int]:
        """How many assets are in each state (only among ``guids`` when given)."""
        wanted = None if guids is None else list(guids)

        def query(connection: sqlite3.Connection) -> dict[str, int]:
            if wanted is None:
                rows = connection.execute("SELECT state, COUNT(*) FROM assets GROUP BY state").fetchall()
            else:
                connection.execute("CREATE TEMP TABLE IF NOT EXISTS wanted_guids (guid TEXT PRIMARY KEY)")
                connection.execute("DELETE FROM wanted_guids")
                connection.executemany("INSERT OR IGNORE INTO wanted_guids VALUES (?)", [(g,) for g in wanted])
                rows = connection.execute(
                    "SELECT state, COUNT(*) FROM assets WHERE guid IN (SELECT guid FROM wanted_guids) GROUP BY state"
                ).fetchall()
            return {str(state): int(count) for state, count in rows}

        return await self._db.call(query)

    async def events(self, guid: str) -> list[EventRecord]:
        """The asset's audit log, oldest first."""

        def query(connection: sqlite3.Connection) -> list[EventRecord]:
            rows = connection.execute(
                f"SELECT {EVENT_COLUMNS} FROM events WHERE entity_kind = ? AND entity_id = ? ORDER BY id",
                (_KIND, guid),
            ).fetchall()
            return [event_from_row(r) for r in rows]

        return await self._db.call(query)


def load_of(connection: sqlite3.Connection, states: list[str]) -> tuple[int, int]:
    """How many assets are in ``states`` (or paused in one: it holds what it held when it paused), and the sum
    of their allocations in MB."""
    marks = ",".join("?" * len(states))
    row = connection.execute(
        "SELECT COUNT(*), COALESCE(SUM(allocation_mb), 0) FROM assets WHERE state IN "
        f"({marks}) OR (state = 'paused' AND resume_state IN ({marks}))",
        [*states, *states],
    ).fetchone()
    return int(row[0]), int(row[1])


def files_of(connection: sqlite3.Connection, guid: str) -> list[StoredFile]:
    """The asset's files, image first (shared with the read-only reader)."""
    rows = connection.execute(
        "SELECT name, kind, size, crc32, local_path, ndrive_path, uploaded, mtime_ns FROM files WHERE guid = ? "
        "ORDER BY CASE kind WHEN 'image' THEN 0 WHEN 'raw' THEN 1 ELSE 2 END, name",
        (guid,),
    ).fetchall()
    return [
        StoredFile(
            record=FileRecord(name=r[0], kind=FileKind(r[1]), size=r[2], crc32=r[3], local_path=r[4], mtime_ns=r[7]),
            ndrive_path=r[5],
            uploaded=bool(r[6]),
        )
        for r in rows
    ]


def _transition(
    connection: sqlite3.Connection,
    current: AssetRecord,
    trigger: AssetTrigger,
    *,
    reason: str,
    actor: str,
    now: float,
    columns: dict[str, Any],
    wake: Wake | None,
) -> AssetRecord:
    """Apply ``trigger`` to ``current`` and write state, columns, wake-up and event (inside a transaction)."""
    outcome = ASSET_MACHINE.apply(
        current.state, trigger, reason=reason, resume_state=current.resume_state, entity=current.guid
    )
    ended = {"waiting_since": None} if outcome.state is not current.state else {}  # a new state ends a wait
    _set_columns(
        connection,
        current.guid,
        {
            **ended,
            **columns,
            "state": outcome.state.value,
            "resume_state": outcome.resume_state.value if outcome.resume_state else None,
            "reason": reason,
            "state_since": now,
            "updated_at": now,
        },
    )
    if wake is None:
        clear_wake(connection, _KIND, current.guid)
    else:
        set_wake(connection, _KIND, current.guid, wake)
    insert_event(
        connection,
        entity_kind=_KIND,
        entity_id=current.guid,
        kind="transition",
        from_state=current.state.value,
        to_state=outcome.state.value,
        trigger=trigger.value,
        reason=reason,
        actor=actor,
        at=now,
    )
    return _current(connection, current.guid, None)
