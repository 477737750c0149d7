"""A read-only view of the store for ``integration status`` (and the coming REPL): no write lock, ever.

It opens the database with ``mode=ro``, never migrates, and reads in one snapshot (a read transaction), so it
can run next to a daemon at any time without slowing it down or changing anything.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from integration.errors import ConfigError
from integration.state_machines import NEEDS_HUMAN_STATES
from integration.store._actors import ACTOR_COLUMNS, actor_from_row
from integration.store._assets import files_of, get_asset, load_of
from integration.store._core import EVENT_COLUMNS, event_from_row
from integration.store._derivatives import DerivativeRecord, derivatives_of, open_megabytes_of
from integration.store._intake import rejection_from_row
from integration.store._jobs import JobRecord, job_counts, select_jobs
from integration.store._lanes import lane_from_row
from integration.store._mos import MosEntry, mos_of
from integration.store._records import (
    ActorRecord,
    AssetRecord,
    EventRecord,
    LaneRecord,
    Rejection,
    StoredFile,
)
from integration.store._schema import MIGRATIONS

__all__ = ["Reader", "open_reader"]


class Reader:
    """Read-only queries over one snapshot of the database."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._c = connection

    def counts_by_state(self) -> dict[str, int]:
        """How many assets are in each state."""
        rows = self._c.execute("SELECT state, COUNT(*) FROM assets GROUP BY state").fetchall()
        return {str(state): int(count) for state, count in rows}

    def lanes(self) -> list[LaneRecord]:
        """Every lane and group hold."""
        rows = self._c.execute(
            "SELECT name, kind, paused, reason, since, probe, cycles, next_probe FROM lanes ORDER BY name"
        ).fetchall()
        return [lane_from_row(r) for r in rows]

    def waiting(self) -> dict[str, int]:
        """How many assets wait for each lane or group hold."""
        rows = self._c.execute("SELECT lane, COUNT(*) FROM wakeups WHERE lane IS NOT NULL GROUP BY lane").fetchall()
        return {str(lane): int(count) for lane, count in rows}

    def waiting_alone(self) -> tuple[int, tuple[str, float, str] | None]:
        """How many assets wait on their own (ARS told them to wait), and the longest waiting: GUID, since, why."""
        total = self._c.execute("SELECT COUNT(*) FROM assets WHERE waiting_since IS NOT NULL").fetchone()[0]
        row = self._c.execute(
            "SELECT a.guid, a.waiting_since, COALESCE(w.reason, '') FROM assets a LEFT JOIN wakeups w "
            "ON w.entity_kind = 'asset' AND w.entity_id = a.guid WHERE a.waiting_since IS NOT NULL "
            "ORDER BY a.waiting_since LIMIT 1"
        ).fetchone()
        return int(total), None if row is None else (str(row[0]), float(row[1]), str(row[2]))

    def imported_path(self, session: str) -> str | None:
        """Where the session folder ``session`` was renamed to on import (None: not renamed, or not known)."""
        row = self._c.execute("SELECT imported_path FROM sessions WHERE path = ?", (session,)).fetchone()
        return None if row is None or row[0] is None else str(row[0])

    def needing_human(self, *, limit: int) -> tuple[list[AssetRecord], int]:
        """Up to ``limit`` quarantined/failed assets (oldest first) and how many there are in all."""
        states = sorted(s.value for s in NEEDS_HUMAN_STATES)
        marks = ",".join("?" * len(states))
        total = self._c.execute(f"SELECT COUNT(*) FROM assets WHERE state IN ({marks})", states).fetchone()[0]
        guids = self._c.execute(
            f"SELECT guid FROM assets WHERE state IN ({marks}) ORDER BY state_since LIMIT ?", (*states, limit)
        ).fetchall()
        return [r for (guid,) in guids if (r := get_asset(self._c, guid)) is not None], int(total)

    def open_rejections(self, *, limit: int) -> tuple[list[Rejection], int]:
        """Up to ``limit`` open rejections (newest first) and how many are open in all."""
        total = self._c.execute("SELECT COUNT(*) FROM rejections WHERE status = 'open'").fetchone()[0]
        rows = self._c.execute(
            "SELECT id, session, name, guid, reason, at, kind, status, closed_at, closed_reason FROM rejections "
            "WHERE status = 'open' ORDER BY id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [rejection_from_row(r) for r in rows], int(total)

    def rejections_of(self, guid: str) -> list[Rejection]:
        """Every rejection recorded for ``guid``, oldest first."""
        rows = self._c.execute(
            "SELECT id, session, name, guid, reason, at, kind, status, closed_at, closed_reason FROM rejections "
            "WHERE guid = ? ORDER BY id",
            (guid,),
        ).fetchall()
        return [rejection_from_row(r) for r in rows]

    def asset(self, guid: str) -> AssetRecord | None:
        """One asset with its wake-up and open intents."""
        return get_asset(self._c, guid)

    def find(self, prefix: str, *, limit: int = 10) -> list[str]:
        """GUIDs starting with ``prefix`` (for a GUID typed in part)."""
        rows = self._c.execute(
            "SELECT guid FROM assets WHERE guid >= ? AND guid < ? ORDER BY guid LIMIT ?",
            (prefix, prefix + "\uffff", limit),
        ).fetchall()
        return [str(r[0]) for r in rows]

    def files(self, guid: str) -> list[StoredFile]:
        """The asset's files with their local and N-Drive paths."""
        return files_of(self._c, guid)

    def processing_load(self, states: list[str]) -> tuple[int, int, int, dict[str, int]]:
        """(assets in ``states`` or paused in one, their allocations in MB, MB of derivatives in ARS and not yet in
        ERDA, jobs by state): what the lane-wide limits count, counted as the daemon counts it."""
        count, megabytes = load_of(self._c, states)
        return count, megabytes, open_megabytes_of(self._c), job_counts(self._c)

    def jobs(self, guid: str) -> list[JobRecord]:
        """The asset's processing jobs, in pipeline order."""
        return select_jobs(self._c, guid)

    def derivatives(self, guid: str) -> list[DerivativeRecord]:
        """The asset's derivative child assets."""
        return derivatives_of(self._c, guid)

    def mos(self, guid: str) -> MosEntry | None:
        """The asset's MOS links (None when its images showed no disposable label code)."""
        return mos_of(self._c, guid)

    def events(self, guid: str, *, limit: int = 200) -> list[EventRecord]:
        """The asset's last ``limit`` events, oldest first."""
        rows = self._c.execute(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE entity_kind = 'asset' AND entity_id = ? "
            "ORDER BY id DESC LIMIT ?",
            (guid, limit),
        ).fetchall()
        return [event_from_row(r) for r in reversed(rows)]

    def actors(self) -> list[ActorRecord]:
        """The daemon's actors as last written."""
        rows = self._c.execute(f"SELECT {ACTOR_COLUMNS} FROM actors ORDER BY name").fetchall()
        return [actor_from_row(r) for r in rows]


@contextlib.contextmanager
def open_reader(database: Path) -> Iterator[Reader]:
    """A :class:`Reader` on ``database`` (read-only, one snapshot); raises ConfigError when it cannot be read."""
    if not database.exists():
        raise ConfigError(f"no database at {database} (has the daemon run yet?)")
    try:
        connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10.0, isolation_level=None)
    except sqlite3.Error as exc:
        raise ConfigError(f"cannot open {database} for reading: {exc}") from exc
    with contextlib.closing(connection):
        version = connection.execute("SELECT MAX(version) FROM schema_version").fetchone()[0]
        if version != len(MIGRATIONS):
            raise ConfigError(
                f"{database} is at schema version {version}, this program reads {len(MIGRATIONS)}: "
                "start the daemon once to migrate it (or use the matching program version)"
            )
        connection.execute("BEGIN")
        try:
            yield Reader(connection)
        finally:
            connection.execute("ROLLBACK")
