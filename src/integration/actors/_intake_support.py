"""What the N-Drive watcher and its session importer share: bounded blocking calls, outcomes, new records."""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import trio

from integration.adapters.ndrive import AssetCandidate, FileState, IntakeRejection, SessionSnapshot
from integration.config import Config
from integration.domain import FileKind, FileRecord, allocation_mb
from integration.errors import InfrastructureError, NdriveUnavailable
from integration.store import NewAsset

__all__ = [
    "ACTOR",
    "Deferred",
    "InFlight",
    "Outcome",
    "Site",
    "WatcherStatistics",
    "allocation",
    "duplicate",
    "entries_of",
    "new_asset",
    "relevant",
    "run_blocking",
]

ACTOR = "ndrive-watcher"
_NOTE_SUFFIX = ".error.txt"
T = TypeVar("T")


class WatcherStatistics(msgspec.Struct, kw_only=True):
    """Counters of the watcher (read by status pages and tests)."""

    scans: int = 0
    sessions_imported: int = 0
    sessions_rejected: int = 0
    assets_ingested: int = 0
    assets_redelivered: int = 0
    rejections: int = 0
    late_changes: int = 0
    late_files_added: int = 0
    late_files_rejected: int = 0
    deferred: int = 0
    crashes: int = 0


class Deferred(msgspec.Struct, frozen=True):
    """The asset could not be imported this round (a changed source, a busy file); the folder stays open."""

    reason: str


class Site(msgspec.Struct, frozen=True):
    """A lane-wide problem stopped this asset (the N-Drive mount, the local disk)."""

    error: InfrastructureError


#: What importing one asset came to: "ingested", "known", "redelivered", a rejection, deferred, or a site problem.
Outcome = str | IntakeRejection | Deferred | Site


def relevant(snapshot: SessionSnapshot) -> SessionSnapshot:
    """The snapshot without our own error notes (writing them must not reset the settle window)."""
    return SessionSnapshot(entries=tuple(e for e in snapshot.entries if not e.name.endswith(_NOTE_SUFFIX)))


def entries_of(snapshot: SessionSnapshot) -> dict[str, FileState]:
    """The snapshot's entries by name."""
    return {entry.name: entry for entry in snapshot.entries}


class InFlight:
    """The blocking N-Drive calls still running in their threads — those abandoned after a timeout too — by path.

    A folder with a call still hanging is not looked at again until that call returns: a hung folder holds one
    thread, not one more every round.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._paths: collections.Counter[str] = collections.Counter()

    def enter(self, path: Path) -> None:
        """A call about ``path`` starts (in its thread)."""
        with self._lock:
            self._paths[str(path)] += 1

    def leave(self, path: Path) -> None:
        """A call about ``path`` returned (in its thread)."""
        with self._lock:
            self._paths[str(path)] -= 1
            if self._paths[str(path)] <= 0:
                del self._paths[str(path)]

    def busy_under(self, folder: Path) -> bool:
        """Whether a call about ``folder`` or anything in it is still running."""
        prefix = str(folder)
        with self._lock:
            return any(p == prefix or p.startswith(prefix + "/") for p in self._paths)


async def run_blocking(
    fn: Callable[..., T],
    *args: Any,
    timeout_s: float,
    what: str,
    path: Path,
    limiter: trio.CapacityLimiter,
    in_flight: InFlight | None = None,
) -> T:
    """Run blocking N-Drive work in a worker thread, within ``timeout_s`` and under ``limiter``.

    A call that hangs (a stuck mount) is abandoned and becomes :class:`NdriveUnavailable`, which pauses the
    intake lane; an abandoned copy only ever leaves a ``.partial`` file, which the next copy overwrites. The
    abandoned thread keeps its token until it returns: with the N-Drive's own limiter a hung mount can use up
    only the N-Drive's threads (further calls time out waiting for one), never those of the rest of the daemon.
    ``in_flight`` keeps track of the call (about ``path``) until its thread returns.
    """

    def call() -> T:
        if in_flight is None:
            return fn(*args)
        in_flight.enter(path)
        try:
            return fn(*args)
        finally:
            in_flight.leave(path)

    try:
        with trio.fail_after(timeout_s):
            return await trio.to_thread.run_sync(call, abandon_on_cancel=True, limiter=limiter)
    except trio.TooSlowError:
        raise NdriveUnavailable(
            f"the N-Drive did not answer within {timeout_s:g} s ({what} {path}): check the mount; "
            "the intake resumes by itself once it answers",
            path=str(path),
        ) from None


def duplicate(candidate: AssetCandidate, first_session: str, state: str) -> IntakeRejection:
    """The rejection of a second copy of an asset that is not waiting for a human."""
    return IntakeRejection(
        name=candidate.guid,
        reason=(
            f"the GUID {candidate.guid} was already imported from session {first_session} (state {state}); "
            "this second copy was left here untouched. Give the asset a new GUID or remove the duplicate."
        ),
        paths=tuple(path for path, _ in candidate.files()),
        guid=candidate.guid,
    )


def allocation(sizes: list[int], config: Config) -> int:
    """The share allocation (MB) for files of ``sizes`` bytes, with the configured headroom."""
    return allocation_mb(
        sizes,
        headroom_fraction=config.ars.allocation_headroom_fraction,
        headroom_min_mb=config.ars.allocation_headroom_min_mb,
    )


def new_asset(
    candidate: AssetCandidate, session: Path, local_dir: Path, records: list[tuple[FileRecord, str]], config: Config
) -> NewAsset:
    """What is recorded for ``candidate`` once its files are copied to ``local_dir``."""
    metadata = candidate.metadata.metadata
    return NewAsset(
        guid=candidate.guid,
        pipeline=metadata.pipeline_name,
        institution=metadata.institution,
        collection=metadata.collection,
        workstation=metadata.workstation_name,
        session=str(session),
        local_dir=str(local_dir),
        allocation_mb=allocation([r.size for r, _ in records if r.kind is not FileKind.METADATA], config),
        metadata_json=candidate.metadata.encode(),
        files=tuple(records),
    )
