"""The MOS table (original-integration §3.4): assets whose images carry a disposable label barcode.

A multi-object specimen's label is photographed apart from the specimens it belongs to, on the same
workstation and day, each image showing the same disposable barcode. Every asset with that barcode gets one row,
keyed by its ``unique_label_id`` (``<workstation>_<day taken>_<disposable>``) within its institution, and is
linked both ways with every other row of that id, in one transaction (so two assets linking at once both see
each other). Each link writes a note event on the asset.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from integration.store._core import insert_event
from integration.store._thread import DatabaseThread

__all__ = ["NOT_AVAILABLE", "MosEntry", "MosRepository", "mos_of"]

#: The ``spid`` of an asset without a specimen barcode of its own (a label), as the original wrote it.
NOT_AVAILABLE = "NOT_AVAILABLE"
_COLUMNS = "guid, institution, unique_label_id, disposable_id, label, spid, first_barcode, connections"


class MosEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One asset's row: what its barcode job found and which assets share its label id."""

    guid: str
    institution: str
    unique_label_id: str
    disposable_id: str
    label: bool  # the image is the label itself (no specimen barcode on it)
    spid: str  # "<institution>_<collection>_<first specimen barcode>", or NOT_AVAILABLE
    first_barcode: str  # its first specimen barcode ("" for a label): what a label receives from it
    connections: tuple[str, ...] = ()  # GUIDs of the other assets with the same label id


def _from_row(row: Sequence[Any]) -> MosEntry:
    return MosEntry(
        guid=row[0], institution=row[1], unique_label_id=row[2], disposable_id=row[3], label=bool(row[4]),
        spid=row[5], first_barcode=row[6], connections=tuple(json.loads(row[7])),
    )  # fmt: skip


def mos_of(connection: sqlite3.Connection, guid: str) -> MosEntry | None:
    """The MOS row of ``guid``, or None when its images showed no disposable code."""
    row = connection.execute(f"SELECT {_COLUMNS} FROM mos WHERE guid = ?", (guid,)).fetchone()
    return _from_row(row) if row else None


def _set_connections(connection: sqlite3.Connection, guid: str, connections: Sequence[str], at: float) -> None:
    connection.execute(
        "UPDATE mos SET connections = ?, updated_at = ? WHERE guid = ?",
        (json.dumps(sorted(set(connections))), at, guid),
    )


def _note(connection: sqlite3.Connection, guid: str, reason: str, actor: str, at: float) -> None:
    row = connection.execute("SELECT state FROM assets WHERE guid = ?", (guid,)).fetchone()
    state = row[0] if row else "unknown"
    insert_event(connection, entity_kind="asset", entity_id=guid, kind="note", from_state=state, to_state=state,
                 trigger="mos_linked", reason=reason, actor=actor, at=at)  # fmt: skip


def _remove(connection: sqlite3.Connection, old: MosEntry, at: float) -> None:
    """Delete ``old``'s row and take it out of its partners' connections."""
    for other in old.connections:
        partner = mos_of(connection, other)
        if partner is not None:
            _set_connections(connection, other, [g for g in partner.connections if g != old.guid], at)
    connection.execute("DELETE FROM mos WHERE guid = ?", (old.guid,))


class MosRepository:
    """Link and read MOS rows."""

    def __init__(self, db: DatabaseThread, clock: Callable[[], float]) -> None:
        self._db = db
        self._clock = clock

    async def link(self, entry: MosEntry, *, actor: str) -> MosEntry:
        """Record ``entry`` (its ``connections`` are ignored) and link it both ways with every other row of its
        label id; returns it as stored, with its connections. Repeating it changes nothing. A row recorded
        before with another label id (its barcode job ran again and read something else) is unlinked from its
        old partners first."""
        at = self._clock()

        def write(connection: sqlite3.Connection) -> MosEntry:
            old = mos_of(connection, entry.guid)
            if old is not None and msgspec.structs.replace(old, connections=()) == entry:
                return old
            if old is not None:
                _remove(connection, old, at)
            others = [
                row[0]
                for row in connection.execute(
                    "SELECT guid FROM mos WHERE institution = ? AND unique_label_id = ? AND guid != ?",
                    (entry.institution, entry.unique_label_id, entry.guid),
                )
            ]
            connection.execute(
                f"INSERT INTO mos ({_COLUMNS}, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (entry.guid, entry.institution, entry.unique_label_id, entry.disposable_id, int(entry.label),
                 entry.spid, entry.first_barcode, json.dumps(sorted(others)), at, at),
            )  # fmt: skip
            for other in others:
                partner = mos_of(connection, other)
                assert partner is not None  # selected just now, in this transaction
                _set_connections(connection, other, [*partner.connections, entry.guid], at)
                _note(connection, other, f"MOS {entry.unique_label_id}: linked with {entry.guid}", actor, at)
            what = "a label" if entry.label else f"specimen {entry.spid}"
            linked = f"linked with {', '.join(sorted(others))}" if others else "no other asset with it yet"
            _note(connection, entry.guid, f"MOS {entry.unique_label_id} ({what}): {linked}", actor, at)
            stored = mos_of(connection, entry.guid)
            assert stored is not None
            return stored

        linked: MosEntry = await self._db.call(write)
        return linked

    async def unlink(self, guid: str, *, actor: str) -> bool:
        """Remove ``guid``'s row and its links (its barcode job ran again and found no disposable code); returns
        whether there was one."""
        at = self._clock()

        def write(connection: sqlite3.Connection) -> bool:
            old = mos_of(connection, guid)
            if old is None:
                return False
            _remove(connection, old, at)
            _note(connection, guid, f"MOS {old.unique_label_id}: unlinked (no disposable code any more)", actor, at)
            return True

        removed: bool = await self._db.call(write)
        return removed

    async def get(self, guid: str) -> MosEntry | None:
        result: MosEntry | None = await self._db.call(lambda connection: mos_of(connection, guid))
        return result

    async def partners(self, guid: str) -> list[MosEntry]:
        """The rows linked with ``guid`` (none when it is not a MOS asset)."""

        def query(connection: sqlite3.Connection) -> list[MosEntry]:
            own = mos_of(connection, guid)
            found = [mos_of(connection, other) for other in (own.connections if own else ())]
            return [entry for entry in found if entry is not None]

        result: list[MosEntry] = await self._db.call(query)
        return result
