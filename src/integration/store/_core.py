"""The generic pieces every repository shares, as functions on a connection inside one transaction.

* events: the append-only audit log, keyed by (entity kind, id), for transitions, intents, outcomes, notes;
* intents: an external side effect that was started; its idempotency key travels with it; opening one and
  settling it are both events, so every wait is explainable;
* wake-ups: an entity's one pending wake-up (kind, due time or lane), found through an index.

They run on the database thread (inside a repository's call), never on their own.
"""

from __future__ import annotations

import sqlite3
import uuid
from typing import Any

from integration.store._records import EventKind, EventRecord, Wake

__all__ = [
    "EVENT_COLUMNS",
    "clear_wake",
    "event_from_row",
    "insert_event",
    "open_intent",
    "open_intents",
    "set_wake",
    "settle_intent",
    "wake_of",
]

EVENT_COLUMNS = "id, entity_kind, entity_id, kind, from_state, to_state, trigger, reason, actor, at"


def insert_event(
    connection: sqlite3.Connection,
    *,
    entity_kind: str,
    entity_id: str,
    kind: EventKind,
    from_state: str | None,
    to_state: str,
    trigger: str,
    reason: str,
    actor: str,
    at: float,
) -> None:
    """Append one event row (the table refuses updates and deletes)."""
    connection.execute(
        "INSERT INTO events (entity_kind, entity_id, kind, from_state, to_state, trigger, reason, actor, at) "
        "VALUES (?,?,?,?,?,?,?,?,?)",
        (entity_kind, entity_id, kind, from_state, to_state, trigger, reason, actor, at),
    )


def event_from_row(row: tuple[Any, ...]) -> EventRecord:
    """An :class:`EventRecord` from a row selected with :data:`EVENT_COLUMNS`."""
    return EventRecord(
        id=row[0],
        entity_kind=row[1],
        entity_id=row[2],
        kind=row[3],
        from_state=row[4],
        to_state=row[5],
        trigger=row[6],
        reason=row[7],
        actor=row[8],
        at=row[9],
    )


def open_intent(
    connection: sqlite3.Connection,
    *,
    entity_kind: str,
    entity_id: str,
    state: str,
    operation: str,
    actor: str,
    at: float,
    detail: str = "",
    key: str | None = None,
) -> str:
    """Record that ``operation`` is about to happen (kept if it was already open); returns its key."""
    existing = connection.execute(
        "SELECT key FROM intents WHERE entity_kind = ? AND entity_id = ? AND operation = ?",
        (entity_kind, entity_id, operation),
    ).fetchone()
    if existing is not None:
        return str(existing[0])
    key = key or f"{entity_kind}:{entity_id}:{operation}:{uuid.uuid4().hex[:12]}"
    connection.execute(
        "INSERT INTO intents (entity_kind, entity_id, operation, key, detail, started_at) VALUES (?,?,?,?,?,?)",
        (entity_kind, entity_id, operation, key, detail, at),
    )
    reason = f"{operation} started (key {key})" + (f": {detail}" if detail else "")
    insert_event(
        connection,
        entity_kind=entity_kind,
        entity_id=entity_id,
        kind="intent",
        from_state=state,
        to_state=state,
        trigger=operation,
        reason=reason,
        actor=actor,
        at=at,
    )
    return key


def settle_intent(
    connection: sqlite3.Connection,
    *,
    entity_kind: str,
    entity_id: str,
    state: str,
    operation: str,
    outcome: str,
    actor: str,
    at: float,
) -> bool:
    """Record the outcome of ``operation`` and close its intent; False when none was open."""
    cursor = connection.execute(
        "DELETE FROM intents WHERE entity_kind = ? AND entity_id = ? AND operation = ?",
        (entity_kind, entity_id, operation),
    )
    if cursor.rowcount == 0:
        return False
    insert_event(
        connection,
        entity_kind=entity_kind,
        entity_id=entity_id,
        kind="outcome",
        from_state=state,
        to_state=state,
        trigger=operation,
        reason=outcome,
        actor=actor,
        at=at,
    )
    return True


def open_intents(connection: sqlite3.Connection, entity_kind: str, entity_id: str) -> dict[str, str]:
    """The entity's open intents: operation -> detail."""
    rows = connection.execute(
        "SELECT operation, detail FROM intents WHERE entity_kind = ? AND entity_id = ?", (entity_kind, entity_id)
    ).fetchall()
    return {str(operation): str(detail) for operation, detail in rows}


def set_wake(connection: sqlite3.Connection, entity_kind: str, entity_id: str, wake: Wake) -> None:
    """Make ``wake`` the entity's one pending wake-up (replacing any other)."""
    connection.execute(
        "INSERT INTO wakeups (entity_kind, entity_id, kind, due, lane, reason) VALUES (?,?,?,?,?,?) "
        "ON CONFLICT(entity_kind, entity_id) DO UPDATE SET kind = excluded.kind, due = excluded.due, "
        "lane = excluded.lane, reason = excluded.reason",
        (entity_kind, entity_id, wake.kind, wake.due, wake.lane, wake.reason),
    )


def clear_wake(connection: sqlite3.Connection, entity_kind: str, entity_id: str) -> None:
    """Forget the entity's pending wake-up, if any."""
    connection.execute("DELETE FROM wakeups WHERE entity_kind = ? AND entity_id = ?", (entity_kind, entity_id))


def wake_of(connection: sqlite3.Connection, entity_kind: str, entity_id: str) -> Wake | None:
    """The entity's pending wake-up, or None."""
    row = connection.execute(
        "SELECT kind, due, lane, reason FROM wakeups WHERE entity_kind = ? AND entity_id = ?",
        (entity_kind, entity_id),
    ).fetchone()
    return None if row is None else Wake(kind=row[0], due=row[1], lane=row[2], reason=row[3])
