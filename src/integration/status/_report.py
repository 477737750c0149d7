"""What ``integration status`` knows, as data: collected once from a read-only view of the store.

The same :class:`StatusReport` is printed as text (80 columns) or JSON, and tests assert on it. "Nothing
needs a human" is said only when nothing does: no quarantined or failed asset, no open rejection, no paused
lane (said to resume by itself until ``lanes.needs_human_after`` probes failed), no held group, no actor
that keeps crashing, no daemon that stopped writing heartbeats (or is not running while assets wait for it),
no missing N-Drive root or workstation folder.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Literal

import msgspec

from integration.adapters.ndrive import missing_workstations
from integration.config import Config
from integration.errors import IntegrationError
from integration.state_machines import DRIVERS, AssetState, Driver
from integration.store import Reader, lock_holder, open_reader

__all__ = [
    "ActorReport",
    "AttentionItem",
    "DaemonReport",
    "LaneReport",
    "ProcessingReport",
    "StatusReport",
    "WaitsReport",
    "collect_status",
]

#: An actor restarted this often since the daemon started needs a human.
CRASHES_NEED_HUMAN = 3
#: States that only move while a daemon runs.
_DAEMON_DRIVEN = frozenset({Driver.WATCHER, Driver.ASSET_ACTOR, Driver.SYNC_POLLER})
#: How many items of each kind are listed (the counts are always whole).
LIST_LIMIT = 50
_NDRIVE_CHECK_S = 5.0


class AttentionItem(msgspec.Struct, frozen=True, kw_only=True):
    """Something a human must look at, and what to do about it."""

    kind: Literal["asset", "rejection", "lane", "hold", "actor", "daemon", "ndrive", "session"]
    name: str
    state: str
    reason: str
    where: str = ""
    since: float | None = None
    id: int | None = None


class LaneReport(msgspec.Struct, frozen=True, kw_only=True):
    """A lane or group hold as persisted, with how many assets wait for it."""

    name: str
    kind: str
    paused: bool
    reason: str
    since: float
    cycles: int
    next_probe: float | None
    waiting: int


class ActorReport(msgspec.Struct, frozen=True, kw_only=True):
    """An actor's last heartbeat and crash record."""

    name: str
    beat_at: float
    restarts: int
    last_error: str


class DaemonReport(msgspec.Struct, frozen=True, kw_only=True):
    """Whether a daemon holds the database, and when it last wrote heartbeats."""

    running: bool
    pid: int | None
    last_heartbeat: float | None
    command_pid: int | None = None  # an ``integration`` command (retry, ack) holds the database meanwhile


class WaitsReport(msgspec.Struct, frozen=True, kw_only=True):
    """Assets that wait on their own (ARS asked them to: a de-dup window, too big for the free space, ...).

    They go on by themselves, or fail after ``ars.max_wait_s`` (then they need a human).
    """

    count: int
    longest_guid: str | None = None
    longest_since: float | None = None
    longest_reason: str = ""


class ProcessingReport(msgspec.Struct, frozen=True, kw_only=True):
    """What the lane-wide processing limits count now, next to the limits."""

    assets_on_hpc: int
    max_assets_on_hpc: int
    open_share_mb: int
    max_open_share_mb: int
    derivative_mb: int
    max_derivative_mb: int
    jobs: dict[str, int]


class StatusReport(msgspec.Struct, frozen=True, kw_only=True):
    """Everything ``integration status`` shows."""

    database: str
    at: float
    total: int
    counts: dict[str, int]
    daemon: DaemonReport
    lanes: list[LaneReport]
    waits: WaitsReport
    actors: list[ActorReport]
    attention: list[AttentionItem]
    attention_total: int
    processing: ProcessingReport | None = None  # None: processing is off ([executor] kind = "none")


def collect_status(config: Config, *, now: float | None = None) -> StatusReport:
    """Read everything ``status`` shows from the store of ``config`` (read-only) and the N-Drive folders."""
    database = Path(config.storage.database)
    now = time.time() if now is None else now
    holder = lock_holder(database)
    pid = None if holder is None or holder.role == "command" else holder.pid or 0
    command_pid = holder.pid if holder is not None and holder.role == "command" else None
    with open_reader(database) as reader:
        counts = reader.counts_by_state()
        waiting = reader.waiting()
        alone, longest = reader.waiting_alone()
        waits = WaitsReport(count=alone)
        if longest is not None:
            waits = WaitsReport(
                count=alone, longest_guid=longest[0], longest_since=longest[1], longest_reason=longest[2]
            )
        lanes = [
            LaneReport(
                name=lane.name,
                kind=lane.kind,
                paused=lane.paused,
                reason=lane.reason,
                since=lane.since,
                cycles=lane.cycles,
                next_probe=lane.next_probe,
                waiting=waiting.get(lane.name, 0),
            )
            for lane in reader.lanes()
        ]
        actors = [
            ActorReport(name=a.name, beat_at=a.beat_at, restarts=a.restarts, last_error=a.last_error)
            for a in reader.actors()
        ]
        attention, total = _attention(reader, config, lanes, actors)
        processing = None
        if config.executor.kind != "none":
            on_hpc = ["share_open", "on_hpc", "processing", "processed"]
            assets_on_hpc, share_mb, derivative_mb, jobs = reader.processing_load(on_hpc)
            limits = config.processing
            processing = ProcessingReport(
                assets_on_hpc=assets_on_hpc, max_assets_on_hpc=limits.max_assets_on_hpc, open_share_mb=share_mb,
                max_open_share_mb=limits.max_open_share_mb, derivative_mb=derivative_mb,
                max_derivative_mb=limits.max_derivative_mb, jobs=jobs,
            )  # fmt: skip
    beats = [a.beat_at for a in actors]
    daemon = DaemonReport(
        running=pid is not None,
        pid=pid or None,
        last_heartbeat=max(beats) if beats else None,
        command_pid=command_pid,
    )
    at_rest = {AssetState.SYNCED.value} if config.executor.kind == "none" else set()  # no processing: done
    unfinished = sum(
        n for state, n in counts.items() if DRIVERS[AssetState(state)] in _DAEMON_DRIVEN and state not in at_rest
    )
    silent = _daemon_attention(daemon, config, now, unfinished=unfinished)
    ordered = {state.value: counts[state.value] for state in AssetState if counts.get(state.value)}
    return StatusReport(
        database=str(database),
        at=now,
        total=sum(counts.values()),
        counts=ordered,
        daemon=daemon,
        lanes=lanes,
        waits=waits,
        actors=actors,
        attention=silent + attention,
        attention_total=len(silent) + total,
        processing=processing,
    )


def _attention(
    reader: Reader, config: Config, lanes: list[LaneReport], actors: list[ActorReport]
) -> tuple[list[AttentionItem], int]:
    items: list[AttentionItem] = []
    total = 0
    for lane in lanes:
        if lane.kind == "group" and lane.paused:
            items.append(
                AttentionItem(
                    kind="hold",
                    name=lane.name.removeprefix("hold:"),
                    state="held",
                    reason=f"{lane.waiting} asset(s) wait: {lane.reason}",
                    since=lane.since,
                )
            )
        elif lane.paused:
            probes = (
                f"still paused after {lane.cycles} probes"
                if lane.cycles >= config.lanes.needs_human_after
                else f"resumes by itself once the cause is gone ({lane.cycles} failed probe(s) so far)"
            )
            items.append(
                AttentionItem(
                    kind="lane",
                    name=lane.name,
                    state="paused",
                    reason=f"{probes}: {lane.reason}",
                    since=lane.since,
                )
            )
    for actor in actors:
        if actor.restarts >= CRASHES_NEED_HUMAN:
            items.append(
                AttentionItem(
                    kind="actor",
                    name=actor.name,
                    state="crashing",
                    reason=f"restarted {actor.restarts} times; last error: {actor.last_error}",
                )
            )
    items += _ndrive_attention(config)
    total += len(items)
    assets, asset_total = reader.needing_human(limit=LIST_LIMIT)
    items += [
        AttentionItem(
            kind="asset", name=a.guid, state=a.state.value, reason=a.reason, where=a.session, since=a.state_since
        )
        for a in assets
    ]
    rejections, rejection_total = reader.open_rejections(limit=LIST_LIMIT)
    items += [
        AttentionItem(
            kind="session" if r.kind == "session" else "rejection",
            name=r.name,
            state=f"rejected ({r.kind})",
            reason=r.reason,
            where=reader.imported_path(r.session) or r.session,  # where the note is now
            since=r.at,
            id=r.id,
        )
        for r in rejections
    ]
    return items, total + asset_total + rejection_total


def _ndrive_attention(config: Config) -> list[AttentionItem]:
    """A missing N-Drive root or workstation folder (checked in a thread, so a hung mount cannot hang status)."""
    found: list[AttentionItem] = []

    def check() -> None:
        root = Path(config.ndrive.root)
        try:
            missing = missing_workstations(root, config.ndrive.workstations)
        except IntegrationError as exc:
            found.append(AttentionItem(kind="ndrive", name=str(root), state="unavailable", reason=str(exc)))
            return
        found.extend(
            AttentionItem(
                kind="ndrive",
                name=name,
                state="missing",
                where=str(root / name),
                reason=f"the workstation folder {root / name} does not exist; nothing of it is imported",
            )
            for name in missing
        )

    thread = threading.Thread(target=check, name="status-ndrive-check", daemon=True)
    thread.start()
    thread.join(_NDRIVE_CHECK_S)
    if thread.is_alive():
        return [
            AttentionItem(
                kind="ndrive",
                name=config.ndrive.root,
                state="not answering",
                reason=f"the N-Drive did not answer within {_NDRIVE_CHECK_S:g} s: check the mount",
            )
        ]
    return found


def _daemon_attention(daemon: DaemonReport, config: Config, now: float, *, unfinished: int) -> list[AttentionItem]:
    if not daemon.running and unfinished:
        return [
            AttentionItem(
                kind="daemon",
                name="daemon",
                state="not running",
                reason=f"{unfinished} asset(s) wait for the daemon to move them on: start it (`integration run`)",
                since=daemon.last_heartbeat,
            )
        ]
    stale_after = 3 * config.daemon.heartbeat_s + 5
    if daemon.running and daemon.last_heartbeat is not None and now - daemon.last_heartbeat > stale_after:
        return [
            AttentionItem(
                kind="daemon",
                name=f"PID {daemon.pid}",
                state="silent",
                reason=f"the daemon holds the database but wrote no heartbeat for {now - daemon.last_heartbeat:.0f} s: "
                "is it stuck? Its log says more.",
                since=daemon.last_heartbeat,
            )
        ]
    return []
