"""The intake repository: session folders (and the target of their ``imported_`` rename) and rejections.

A rename on the N-Drive cannot be undone by a transaction, so it is bracketed like an ARS call: the target is
persisted as an intent (durably: the store commits with ``synchronous=FULL``) before the rename, and the
rename is recorded — the session's new path and every file's N-Drive path — afterwards. After a crash in
between, :meth:`IntakeRepository.pending_renames` says which folders to look at. Recording the rename opens a
second intent, to look at the renamed folder once more for files that slipped in during the rename; it is
settled once that look is done (:meth:`IntakeRepository.pending_relists` after a crash).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from typing import Any

from integration.store._core import insert_event, open_intent, open_intents, settle_intent
from integration.store._records import Rejection, SessionRecord
from integration.store._thread import DatabaseThread

__all__ = ["IntakeRepository", "rejection_from_row"]

_KIND = "session"
_RENAME = "rename"
_RELIST = "relist"
_REJECTION_COLUMNS = "id, session, name, guid, reason, at, kind, status, closed_at, closed_reason"


def _move_paths(connection: sqlite3.Connection, session: str, target: str) -> None:
    """Point the N-Drive paths of ``session``'s files into ``target`` (its renamed folder)."""
    prefix = session.rstrip("/") + "/"
    connection.execute(
        "UPDATE files SET ndrive_path = ? || substr(ndrive_path, ?) "
        "WHERE guid IN (SELECT guid FROM assets WHERE session = ?) AND substr(ndrive_path, 1, ?) = ?",
        (target.rstrip("/") + "/", len(prefix) + 1, session, len(prefix), prefix),
    )


def rejection_from_row(row: tuple[Any, ...]) -> Rejection:
    """A :class:`Rejection` from a row selected with the rejection columns."""
    return Rejection(
        id=row[0],
        session=row[1],
        name=row[2],
        guid=row[3],
        reason=row[4],
        at=row[5],
        kind=row[6],
        status=row[7],
        closed_at=row[8],
        closed_reason=row[9],
    )


class IntakeRepository:
    """Session folders and intake rejections on the database thread."""

    def __init__(self, db: DatabaseThread, clock: Callable[[], float]) -> None:
        self._db = db
        self._clock = clock

    # -- rejections --------------------------------------------------------------------------------------

    async def record_rejection(self, rejection: Rejection) -> bool:
        """Remember a rejection; True when it is new or its reason changed (same session and name).

        The same rejection again (a folder kept open is looked at again, the daemon restarted) changes
        nothing: an acknowledged or resolved one stays closed, and False says there is nothing new to tell.
        A changed reason is a new problem: it is recorded, and a closed rejection is opened again.
        """

        def upsert(connection: sqlite3.Connection) -> bool:
            cursor = connection.execute(
                "INSERT INTO rejections (session, name, guid, reason, at, kind) VALUES (?,?,?,?,?,?) "
                "ON CONFLICT(session, name) DO UPDATE SET reason = excluded.reason, at = excluded.at, "
                "kind = excluded.kind, guid = excluded.guid, status = 'open', closed_at = NULL, closed_reason = '' "
                "WHERE rejections.reason != excluded.reason",
                (rejection.session, rejection.name, rejection.guid, rejection.reason, rejection.at, rejection.kind),
            )
            return cursor.rowcount == 1

        return await self._db.call(upsert)

    async def resolve_rejection(self, session: str, name: str, *, reason: str) -> bool:
        """Close an open rejection because its cause went away (e.g. the copy succeeded on a later try)."""
        now = self._clock()
        return await self._db.call(
            lambda c: (
                c.execute(
                    "UPDATE rejections SET status = 'resolved', closed_at = ?, closed_reason = ? "
                    "WHERE session = ? AND name = ? AND status = 'open'",
                    (now, reason, session, name),
                ).rowcount
                == 1
            )
        )

    async def acknowledge(
        self, *, ids: Iterable[int] = (), session: str | None = None, every: bool = False, reason: str, actor: str
    ) -> list[int]:
        """An operator closes open rejections (by id, all of a session, or all); returns the ids closed."""
        now = self._clock()
        wanted = sorted(set(ids))

        def close(connection: sqlite3.Connection) -> list[int]:
            if every:
                rows = connection.execute("SELECT id FROM rejections WHERE status = 'open'").fetchall()
            elif session is not None:
                rows = connection.execute(
                    "SELECT id FROM rejections WHERE status = 'open' AND session = ?", (session,)
                ).fetchall()
            else:
                marks = ",".join("?" * len(wanted))
                rows = connection.execute(
                    f"SELECT id FROM rejections WHERE status = 'open' AND id IN ({marks})", wanted
                ).fetchall()
            closed = [int(r[0]) for r in rows]
            connection.executemany(
                "UPDATE rejections SET status = 'acknowledged', closed_at = ?, closed_reason = ? WHERE id = ?",
                [(now, f"acknowledged by {actor}: {reason}", i) for i in closed],
            )
            return closed

        return await self._db.call(close)

    async def rejections(self, *, status: str | None = "open", limit: int = 1000) -> list[Rejection]:
        """Rejections with ``status`` (None: any), newest first."""

        def query(connection: sqlite3.Connection) -> list[Rejection]:
            if status is None:
                rows = connection.execute(
                    f"SELECT {_REJECTION_COLUMNS} FROM rejections ORDER BY id DESC LIMIT ?", (limit,)
                ).fetchall()
            else:
                rows = connection.execute(
                    f"SELECT {_REJECTION_COLUMNS} FROM rejections WHERE status = ? ORDER BY id DESC LIMIT ?",
                    (status, limit),
                ).fetchall()
            return [rejection_from_row(r) for r in rows]

        return await self._db.call(query)

    # -- sessions ----------------------------------------------------------------------------------------

    async def record_session(
        self, path: str, *, workstation: str, status: str, assets: int, rejected: int, problem: str = ""
    ) -> None:
        """Record what happened to a session folder (``imported``, ``rejected``)."""
        now = self._clock()
        await self._db.call(
            lambda c: c.execute(
                "INSERT INTO sessions (path, workstation, status, assets, rejected, at, problem) "
                "VALUES (?,?,?,?,?,?,?) "
                "ON CONFLICT(path) DO UPDATE SET status = excluded.status, assets = excluded.assets, "
                "rejected = excluded.rejected, at = excluded.at, problem = excluded.problem",
                (path, workstation, status, assets, rejected, now, problem),
            )
        )

    async def start_rename(self, session: str, target: str, *, actor: str) -> None:
        """Persist that ``session`` is about to be renamed to ``target`` (call before renaming)."""
        now = self._clock()
        await self._db.call(
            lambda c: open_intent(
                c,
                entity_kind=_KIND,
                entity_id=session,
                state="open",
                operation=_RENAME,
                actor=actor,
                at=now,
                detail=target,
            )
        )

    async def finish_rename(
        self, session: str, target: str, *, workstation: str, assets: int, rejected: int, actor: str
    ) -> None:
        """Record the rename: the session's new path and every file's N-Drive path, and close the intent."""
        now = self._clock()

        def record(connection: sqlite3.Connection) -> None:
            settle_intent(
                connection,
                entity_kind=_KIND,
                entity_id=session,
                state="open",
                operation=_RENAME,
                outcome=f"renamed to {target}",
                actor=actor,
                at=now,
            )
            _move_paths(connection, session, target)
            connection.execute(
                "INSERT INTO sessions (path, workstation, status, assets, rejected, at, imported_path) "
                "VALUES (?,?,'imported',?,?,?,?) ON CONFLICT(path) DO UPDATE SET status = 'imported', "
                "assets = excluded.assets, rejected = excluded.rejected, at = excluded.at, "
                "imported_path = excluded.imported_path, problem = ''",
                (session, workstation, assets, rejected, now, target),
            )
            connection.execute(
                "UPDATE rejections SET status = 'resolved', closed_at = ?, closed_reason = 'the folder was imported' "
                "WHERE session = ? AND kind = 'session' AND status = 'open'",
                (now, session),
            )
            insert_event(
                connection,
                entity_kind=_KIND,
                entity_id=session,
                kind="transition",
                from_state="open",
                to_state="imported",
                trigger="import",
                reason=f"{assets} asset(s) imported, {rejected} rejection(s); renamed to {target}",
                actor=actor,
                at=now,
            )
            # The renamed folder is still to be looked at for files that slipped in during the rename.
            open_intent(
                connection,
                entity_kind=_KIND,
                entity_id=session,
                state="imported",
                operation=_RELIST,
                actor=actor,
                at=now,
                detail=target,
            )

        await self._db.call(record)

    async def unlocated_sessions(self) -> dict[str, list[str]]:
        """Sessions imported by an earlier release, whose rename target was not recorded: path -> file names.

        Their files' N-Drive paths still name the folder as it was before the rename.
        """

        def query(connection: sqlite3.Connection) -> dict[str, list[str]]:
            rows = connection.execute(
                "SELECT s.path, f.ndrive_path FROM sessions s JOIN assets a ON a.session = s.path "
                "JOIN files f ON f.guid = a.guid WHERE s.status = 'imported' AND s.imported_path IS NULL"
            ).fetchall()
            found: dict[str, list[str]] = {}
            for path, ndrive in rows:
                found.setdefault(str(path), []).append(str(ndrive).rsplit("/", 1)[-1])
            return found

        return await self._db.call(query)

    async def relocate(self, session: str, target: str, *, actor: str) -> None:
        """Record where an earlier release renamed ``session`` to (its files' N-Drive paths follow), with an event."""
        now = self._clock()

        def record(connection: sqlite3.Connection) -> None:
            _move_paths(connection, session, target)
            connection.execute("UPDATE sessions SET imported_path = ? WHERE path = ?", (target, session))
            insert_event(
                connection,
                entity_kind=_KIND,
                entity_id=session,
                kind="note",
                from_state="imported",
                to_state="imported",
                trigger="relocate",
                reason=f"found renamed to {target} (an earlier release did not record it); file paths updated",
                actor=actor,
                at=now,
            )

        await self._db.call(record)

    async def finish_relist(self, session: str, *, actor: str, outcome: str = "looked at again") -> None:
        """Record that the renamed folder of ``session`` was looked at again (see :meth:`finish_rename`)."""
        await self._settle(session, _RELIST, state="imported", outcome=outcome, actor=actor)

    async def pending_relists(self) -> dict[str, str]:
        """Sessions whose renamed folder is still to be looked at again (a crash came first): path -> target."""
        return await self._open_of(_RELIST)

    async def abandon_rename(self, session: str, *, outcome: str, actor: str) -> None:
        """Close a rename intent that did not happen (the folder is still where it was)."""
        await self._settle(session, _RENAME, state="open", outcome=outcome, actor=actor)

    async def pending_renames(self) -> dict[str, str]:
        """Sessions whose rename was started but not recorded: path -> target."""
        return await self._open_of(_RENAME)

    async def _settle(self, session: str, operation: str, *, state: str, outcome: str, actor: str) -> None:
        now = self._clock()
        await self._db.call(
            lambda c: settle_intent(
                c,
                entity_kind=_KIND,
                entity_id=session,
                state=state,
                operation=operation,
                outcome=outcome,
                actor=actor,
                at=now,
            )
        )

    async def _open_of(self, operation: str) -> dict[str, str]:
        """Sessions with an open ``operation`` intent: path -> its detail (the target folder)."""

        def query(connection: sqlite3.Connection) -> dict[str, str]:
            rows = connection.execute(
                "SELECT entity_id, detail FROM intents WHERE entity_kind = ? AND operation = ?", (_KIND, operation)
            ).fetchall()
            return {str(path): str(target) for path, target in rows}

        return await self._db.call(query)

    async def rename_target(self, session: str) -> str | None:
        """The target of an unfinished rename of ``session``, or None."""
        intents: dict[str, str] = await self._db.call(lambda c: open_intents(c, _KIND, session))
        return intents.get(_RENAME)

    async def session(self, path: str) -> SessionRecord | None:
        """What is recorded about the session folder ``path``."""

        def query(connection: sqlite3.Connection) -> SessionRecord | None:
            row = connection.execute(
                "SELECT path, workstation, status, assets, rejected, at, imported_path, problem FROM sessions "
                "WHERE path = ?",
                (path,),
            ).fetchone()
            if row is None:
                return None
            return SessionRecord(
                path=row[0],
                workstation=row[1],
                status=row[2],
                assets=row[3],
                rejected=row[4],
                at=row[5],
                imported_path=row[6],
                problem=row[7],
            )

        return await self._db.call(query)
