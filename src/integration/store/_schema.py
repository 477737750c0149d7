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
    # 2: one machine core for assets, jobs and child assets (docs/architecture.md, "The store").
    #    Events keyed by (entity kind, id) with a kind of event; intents and wake-ups in their own tables;
    #    intake sessions remember the target of their rename; rejections get a lifecycle; lanes and group
    #    holds with their probe cycles; admin requests; actor heartbeats. ``in_ars`` only for assets ARS is
    #    known to hold: past ``created_in_ars``, or with a ``create`` in their events (a quarantined or failed
    #    asset may never have reached ARS). A request's ``taken_at`` is when a daemon picked it up.
    """
    ALTER TABLE events RENAME COLUMN guid TO entity_id;
    ALTER TABLE events ADD COLUMN entity_kind TEXT NOT NULL DEFAULT 'asset';
    ALTER TABLE events ADD COLUMN kind TEXT NOT NULL DEFAULT 'transition';
    DROP INDEX events_by_guid;
    CREATE INDEX events_by_entity ON events(entity_kind, entity_id, id);

    CREATE TABLE intents (
        entity_kind TEXT NOT NULL,
        entity_id   TEXT NOT NULL,
        operation   TEXT NOT NULL,
        key         TEXT NOT NULL UNIQUE,
        detail      TEXT NOT NULL DEFAULT '',
        started_at  REAL NOT NULL,
        PRIMARY KEY (entity_kind, entity_id, operation)
    );
    INSERT INTO intents (entity_kind, entity_id, operation, key, detail, started_at)
        SELECT 'asset', guid, intent, 'asset:' || guid || ':' || intent || ':migrated', '', updated_at
        FROM assets WHERE intent IS NOT NULL;

    CREATE TABLE wakeups (
        entity_kind TEXT NOT NULL,
        entity_id   TEXT NOT NULL,
        kind        TEXT NOT NULL,
        due         REAL,
        lane        TEXT,
        reason      TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (entity_kind, entity_id)
    );
    CREATE INDEX wakeups_due ON wakeups(kind, due) WHERE due IS NOT NULL;
    CREATE INDEX wakeups_by_lane ON wakeups(lane) WHERE lane IS NOT NULL;
    INSERT INTO wakeups (entity_kind, entity_id, kind, due, reason)
        SELECT 'asset', guid, CASE state WHEN 'syncing' THEN 'sync_poll' ELSE 'dispatch' END, next_wake, 'migrated'
        FROM assets WHERE next_wake IS NOT NULL;

    DROP INDEX assets_by_wake;
    ALTER TABLE assets DROP COLUMN next_wake;
    ALTER TABLE assets DROP COLUMN intent;
    ALTER TABLE assets ADD COLUMN crc_mismatches INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE assets ADD COLUMN in_ars INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE assets ADD COLUMN waiting_since REAL;
    UPDATE assets SET in_ars = 1
        WHERE state IN ('created_in_ars', 'uploaded', 'syncing', 'synced', 'share_open', 'on_hpc', 'processing',
                        'processed', 'finalized')
           OR (state = 'paused' AND resume_state IN ('created_in_ars', 'uploaded', 'syncing', 'synced'))
           OR guid IN (SELECT entity_id FROM events WHERE entity_kind = 'asset' AND trigger = 'create');
    CREATE INDEX assets_by_session ON assets(session);

    ALTER TABLE files ADD COLUMN mtime_ns INTEGER;
    ALTER TABLE sessions ADD COLUMN imported_path TEXT;
    ALTER TABLE sessions ADD COLUMN problem TEXT NOT NULL DEFAULT '';

    ALTER TABLE rejections ADD COLUMN kind TEXT NOT NULL DEFAULT 'intake';
    ALTER TABLE rejections ADD COLUMN status TEXT NOT NULL DEFAULT 'open';
    ALTER TABLE rejections ADD COLUMN closed_at REAL;
    ALTER TABLE rejections ADD COLUMN closed_reason TEXT NOT NULL DEFAULT '';
    CREATE INDEX rejections_open ON rejections(status, id);
    CREATE INDEX rejections_by_guid ON rejections(guid) WHERE guid IS NOT NULL;

    ALTER TABLE lanes ADD COLUMN kind TEXT NOT NULL DEFAULT 'lane';
    ALTER TABLE lanes ADD COLUMN probe TEXT NOT NULL DEFAULT 'health';
    ALTER TABLE lanes ADD COLUMN cycles INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE lanes ADD COLUMN next_probe REAL;

    CREATE TABLE requests (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        kind         TEXT NOT NULL,
        body         TEXT NOT NULL,
        requested_by TEXT NOT NULL,
        created_at   REAL NOT NULL,
        status       TEXT NOT NULL DEFAULT 'pending',
        result       TEXT NOT NULL DEFAULT '',
        done_at      REAL,
        taken_at     REAL
    );
    CREATE INDEX requests_pending ON requests(id) WHERE status = 'pending';

    CREATE TABLE actors (
        name          TEXT PRIMARY KEY,
        pid           INTEGER NOT NULL,
        started_at    REAL NOT NULL,
        beat_at       REAL NOT NULL,
        restarts      INTEGER NOT NULL DEFAULT 0,
        last_error    TEXT NOT NULL DEFAULT '',
        last_error_at REAL
    );
    """,
    # 3: processing jobs (issue 7): one row per (asset, job) with its attempt counter; the idempotency key
    #    <guid>-<job>-<attempt> is derived from it. Their transitions go to events as entity kind 'job'.
    """
    CREATE TABLE jobs (
        guid           TEXT NOT NULL REFERENCES assets(guid),
        job            TEXT NOT NULL,
        grp            INTEGER NOT NULL,
        module         TEXT NOT NULL,
        attempt        INTEGER NOT NULL DEFAULT 1,
        state          TEXT NOT NULL,
        executor_id    TEXT NOT NULL DEFAULT '',
        module_version TEXT NOT NULL DEFAULT '',
        result         BLOB,
        reason         TEXT NOT NULL DEFAULT '',
        state_since    REAL NOT NULL,
        created_at     REAL NOT NULL,
        updated_at     REAL NOT NULL,
        PRIMARY KEY (guid, job)
    );
    CREATE INDEX jobs_by_state ON jobs(state);
    """,
    # 4: a done job's result applied by the daemon (barcodes to ARS, derivatives registered); derivative child
    #    assets with their own lifecycle (state_machines/_derivative.py), events as entity kind 'derivative'.
    """
    ALTER TABLE jobs ADD COLUMN applied INTEGER NOT NULL DEFAULT 0;
    CREATE TABLE derivatives (
        guid          TEXT PRIMARY KEY,
        parent        TEXT NOT NULL REFERENCES assets(guid),
        name          TEXT NOT NULL,
        size_bytes    INTEGER NOT NULL,
        crc32         INTEGER NOT NULL,
        metadata_json BLOB NOT NULL,
        state         TEXT NOT NULL,
        reason        TEXT NOT NULL DEFAULT '',
        state_since   REAL NOT NULL,
        created_at    REAL NOT NULL,
        updated_at    REAL NOT NULL
    );
    CREATE INDEX derivatives_by_parent ON derivatives(parent);
    CREATE INDEX derivatives_by_state ON derivatives(state);
    """,
    # 5: the MOS table (original §3.4): assets whose images carry a disposable label barcode, linked both ways
    #    with every other asset of the same label id (workstation, day, disposable code).
    """
    CREATE TABLE mos (
        guid            TEXT PRIMARY KEY REFERENCES assets(guid),
        institution     TEXT NOT NULL,
        unique_label_id TEXT NOT NULL,
        disposable_id   TEXT NOT NULL,
        label           INTEGER NOT NULL,
        spid            TEXT NOT NULL,
        first_barcode   TEXT NOT NULL,
        connections     TEXT NOT NULL,
        created_at      REAL NOT NULL,
        updated_at      REAL NOT NULL
    );
    CREATE INDEX mos_by_label_id ON mos(institution, unique_label_id);
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
