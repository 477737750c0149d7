"""Derivative child assets: one row each, moved by the derivative machine (state_machines/_derivative.py) with
an event per transition (entity kind ``derivative``), in one transaction."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from integration.errors import DataError, StateConflict, UnknownJob
from integration.state_machines import DerivativeState, DerivativeTrigger, apply_derivative
from integration.store._core import insert_event
from integration.store._thread import DatabaseThread

__all__ = ["DerivativeRecord", "DerivativeRepository", "NewDerivative", "derivatives_of", "open_megabytes_of"]

_COLUMNS = "guid, parent, name, size_bytes, crc32, metadata_json, state, reason, state_since, created_at, updated_at"
_KIND = "derivative"
#: States in which a derivative holds share space in ARS (counted against the derivative lane limit).
OPEN_STATES = (DerivativeState.CREATED_IN_ARS, DerivativeState.UPLOADED, DerivativeState.SYNCING)


class NewDerivative(msgspec.Struct, frozen=True, kw_only=True):
    guid: str
    name: str  # its file name (in its own share, and in the job's work folder)
    size_bytes: int
    crc32: int
    metadata_json: bytes  # the v2_1_0 document the derivatives job wrote for it


class DerivativeRecord(msgspec.Struct, frozen=True, kw_only=True):
    guid: str
    parent: str
    name: str
    size_bytes: int
    crc32: int
    metadata_json: bytes
    state: DerivativeState
    reason: str
    state_since: float
    created_at: float
    updated_at: float


def _from_row(row: Sequence[Any]) -> DerivativeRecord:
    return DerivativeRecord(
        guid=row[0], parent=row[1], name=row[2], size_bytes=row[3], crc32=row[4], metadata_json=row[5],
        state=DerivativeState(row[6]), reason=row[7], state_since=row[8], created_at=row[9], updated_at=row[10],
    )  # fmt: skip


class DerivativeRepository:
    """Register, read and move derivative child assets."""

    def __init__(self, db: DatabaseThread, clock: Callable[[], float]) -> None:
        self._db = db
        self._clock = clock

    async def register(self, parent: str, made: Sequence[NewDerivative], *, actor: str) -> list[DerivativeRecord]:
        """Record ``made`` as ``registered`` children of ``parent`` (a GUID recorded already is left as it is).
        Returns all of the parent's derivatives."""
        at = self._clock()

        def write(connection: sqlite3.Connection) -> list[DerivativeRecord]:
            if connection.execute("SELECT 1 FROM assets WHERE guid = ?", (parent,)).fetchone() is None:
                raise UnknownJob(guid=parent, job="(derivatives: no such parent asset)")
            for item in made:
                owner = connection.execute("SELECT parent FROM derivatives WHERE guid = ?", (item.guid,)).fetchone()
                if owner is not None:
                    if owner[0] != parent:  # the asset's own data error, never a conflict to look at again
                        raise DataError(f"derivative GUID {item.guid} already belongs to asset {owner[0]}", guid=parent)
                    continue
                state = apply_derivative(None, DerivativeTrigger.REGISTER, guid=item.guid)
                connection.execute(
                    f"INSERT INTO derivatives ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (item.guid, parent, item.name, item.size_bytes, item.crc32, item.metadata_json, state.value, "",
                     at, at, at),
                )  # fmt: skip
                insert_event(connection, entity_kind=_KIND, entity_id=item.guid, kind="transition", from_state=None,
                             to_state=state.value, trigger=DerivativeTrigger.REGISTER.value,
                             reason=f"made from {parent}: {item.name}, {item.size_bytes} bytes", actor=actor,
                             at=at)  # fmt: skip
            return derivatives_of(connection, parent)

        result: list[DerivativeRecord] = await self._db.call(write)
        return result

    async def get(self, guid: str) -> DerivativeRecord | None:
        def query(connection: sqlite3.Connection) -> DerivativeRecord | None:
            row = connection.execute(f"SELECT {_COLUMNS} FROM derivatives WHERE guid = ?", (guid,)).fetchone()
            return _from_row(row) if row else None

        result: DerivativeRecord | None = await self._db.call(query)
        return result

    async def of_parent(self, parent: str) -> list[DerivativeRecord]:
        result: list[DerivativeRecord] = await self._db.call(lambda connection: derivatives_of(connection, parent))
        return result

    async def transition(
        self, guid: str, trigger: DerivativeTrigger, *, expected: DerivativeState, actor: str, reason: str = ""
    ) -> DerivativeRecord:
        """Move the derivative by ``trigger`` from ``expected`` (else :class:`StateConflict`, nothing written)."""
        at = self._clock()

        def write(connection: sqlite3.Connection) -> DerivativeRecord:
            row = connection.execute(f"SELECT {_COLUMNS} FROM derivatives WHERE guid = ?", (guid,)).fetchone()
            if row is None:
                raise UnknownJob(guid=guid, job="(no such derivative)")
            current = _from_row(row)
            if current.state is not expected:
                raise StateConflict(guid=guid, expected=expected.value, actual=current.state.value)
            new = apply_derivative(current.state, trigger, reason=reason, guid=guid)
            connection.execute(
                "UPDATE derivatives SET state = ?, reason = ?, state_since = ?, updated_at = ? WHERE guid = ?",
                (new.value, reason, at, at, guid),
            )
            insert_event(connection, entity_kind=_KIND, entity_id=guid, kind="transition",
                         from_state=current.state.value, to_state=new.value, trigger=trigger.value, reason=reason,
                         actor=actor, at=at)  # fmt: skip
            return _from_row(
                connection.execute(f"SELECT {_COLUMNS} FROM derivatives WHERE guid = ?", (guid,)).fetchone()
            )

        moved: DerivativeRecord = await self._db.call(write)
        return moved

    async def open_megabytes(self, *, excluding_parent: str = "") -> int:
        """Megabytes of derivatives created in ARS and not yet in ERDA (the derivative lane limit counts these),
        those of ``excluding_parent`` left out."""

        result: int = await self._db.call(lambda connection: open_megabytes_of(connection, excluding_parent))
        return result


def open_megabytes_of(connection: sqlite3.Connection, excluding_parent: str = "") -> int:
    """Megabytes (rounded up) of derivatives in ``OPEN_STATES``, those of ``excluding_parent`` left out."""
    marks = ",".join("?" * len(OPEN_STATES))
    row = connection.execute(
        f"SELECT COALESCE(SUM(size_bytes), 0) FROM derivatives WHERE state IN ({marks}) AND parent != ?",
        [*(s.value for s in OPEN_STATES), excluding_parent],
    ).fetchone()
    return -(-int(row[0]) // 1_000_000)


def derivatives_of(connection: sqlite3.Connection, parent: str) -> list[DerivativeRecord]:
    rows = connection.execute(f"SELECT {_COLUMNS} FROM derivatives WHERE parent = ? ORDER BY guid", (parent,))
    return [_from_row(row) for row in rows]
