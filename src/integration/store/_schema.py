"""Schema migrations: an ordered list of SQL scripts and a version table.

A migration is never edited once released; a change is a new entry. ``migrate`` applies the missing ones
in order, each in its own transaction, and records the version it reached.
"""

from __future__ import annotations

import sqlite3

__all__ = ["MIGRATIONS", "migrate", "schema_version"]

MIGRATIONS: tuple[str, ...] = (
    # 1: the track of parent assets, their metadata and files, the audit log, intake rejections, sessions.
    """
    CREATE TABLE assets (
        guid          TEXT PRIMARY KEY,
        state         TEXT NOT NULL,
        resume_state  TEXT,
        pipeline      TEXT NOT NULL,
        institution   TEXT NOT NULL,
        collection    TEXT NOT NULL,
        workstation   TEXT NOT NULL,
        session       TEXT NOT NULL,
        local_dir     TEXT NOT NULL,
        allocation_mb INTEGER NOT NULL,
        intent        TEXT,
        resyncs       INTEGER NOT NULL DEFAULT 0,
        attempts      INTEGER NOT NULL DEFAULT 0,
        reason        TEXT NOT NULL DEFAULT '',
        next_wake     REAL,
        state_since   REAL NOT NULL,
        created_at    REAL NOT NULL,
        updated_at    REAL NOT NULL
    );
    CREATE INDEX assets_by_state ON assets(state);
    CREATE INDEX assets_by_wake ON assets(next_wake) WHERE next_wake IS NOT NULL;

    CREATE TABLE metadata (
        guid TEXT PRIMARY KEY REFERENCES assets(guid),
        json BLOB NOT NULL
    );

    CREATE TABLE files (
        guid        TEXT NOT NULL REFERENCES assets(guid),
        name        TEXT NOT NULL,
        kind        TEXT NOT NULL,
        size        INTEGER NOT NULL,
        crc32       INTEGER NOT NULL,
        local_path  TEXT NOT NULL,
        ndrive_path TEXT NOT NULL,
        uploaded    INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (guid, name)
    );

    CREATE TABLE events (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        guid       TEXT NOT NULL,
        from_state TEXT,
        to_state   TEXT NOT NULL,
        trigger    TEXT NOT NULL,
        reason     TEXT NOT NULL,
        actor      TEXT NOT NULL,
        at         REAL NOT NULL
    );
    CREATE INDEX events_by_guid ON events(guid, id);
    CREATE TRIGGER events_append_only_update BEFORE UPDATE ON events
        BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;
    CREATE TRIGGER events_append_only_delete BEFORE DELETE ON events
        BEGIN SELECT RAISE(ABORT, 'events are append-only'); END;

    CREATE TABLE rejections (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        session     TEXT NOT NULL,
        name        TEXT NOT NULL,
        guid        TEXT,
        reason      TEXT NOT NULL,
        at          REAL NOT NULL,
        UNIQUE (session, name)
    );

    CREATE TABLE sessions (
        path        TEXT PRIMARY KEY,
        workstation TEXT NOT NULL,
        status      TEXT NOT NULL,
        assets      INTEGER NOT NULL DEFAULT 0,
        rejected    INTEGER NOT NULL DEFAULT 0,
        at          REAL NOT NULL
    );

    CREATE TABLE lanes (
        name   TEXT PRIMARY KEY,
        paused INTEGER NOT NULL,
        reason TEXT NOT NULL,
        since  REAL NOT NULL
    );
    """,
)


def schema_version(connection: sqlite3.Connection) -> int:
    """The version the database is at (0 for a new file)."""
    connection.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = connection.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def migrate(connection: sqlite3.Connection) -> int:
    """Apply every missing migration; returns the version reached. Runs on the database thread."""
    current = schema_version(connection)
    if current > len(MIGRATIONS):
        raise RuntimeError(
            f"database schema version {current} is newer than this program ({len(MIGRATIONS)}); upgrade it"
        )
    for version, script in enumerate(MIGRATIONS[current:], start=current + 1):
        for statement in _statements(script):
            connection.execute(statement)
        connection.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
    return len(MIGRATIONS)


def _statements(script: str) -> list[str]:
    """Split a script into statements, keeping CREATE TRIGGER ... END; blocks whole."""
    statements: list[str] = []
    buffer = ""
    for part in script.split(";"):
        buffer += part + ";"
        if sqlite3.complete_statement(buffer):
            if buffer.strip(" \n;"):
                statements.append(buffer.strip())
            buffer = ""
    return statements
