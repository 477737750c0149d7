"""``integration status``: a one-shot overview read from the store (counts, lanes, what needs a human)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import msgspec
from rich.console import Console
from rich.table import Table

from integration.state_machines import AssetState
from integration.store import open_store

__all__ = ["AttentionItem", "StatusReport", "collect_status", "render_status"]

_NEEDS_HUMAN = (AssetState.QUARANTINED, AssetState.FAILED)


class AttentionItem(msgspec.Struct, frozen=True, kw_only=True):
    """Something a human must look at: an asset (quarantined/failed) or an intake rejection."""

    kind: str  # "asset" or "rejected-file"
    name: str  # GUID or file stem
    state: str
    reason: str
    where: str  # session folder
    since: str  # ISO-8601 UTC


class LaneReport(msgspec.Struct, frozen=True, kw_only=True):
    """A lane's persisted state."""

    name: str
    paused: bool
    reason: str
    since: str


class StatusReport(msgspec.Struct, frozen=True, kw_only=True):
    """Everything ``integration status`` shows."""

    total: int
    counts: dict[str, int]
    lanes: list[LaneReport]
    attention: list[AttentionItem]


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


async def collect_status(database: Path) -> StatusReport:
    """Read the store at ``database`` into a :class:`StatusReport`."""
    async with open_store(database) as store:
        counts = await store.counts_by_state()
        lanes = await store.lanes()
        stuck = await store.assets_in(_NEEDS_HUMAN)
        rejections = await store.rejections()
    attention = [
        AttentionItem(
            kind="asset", name=r.guid, state=r.state.value, reason=r.reason, where=r.session, since=_iso(r.state_since)
        )
        for r in stuck
    ]
    attention += [
        AttentionItem(
            kind="rejected-file", name=r.name, state="rejected", reason=r.reason, where=r.session, since=_iso(r.at)
        )
        for r in rejections
    ]
    ordered = {state.value: counts.get(state.value, 0) for state in AssetState if counts.get(state.value)}
    return StatusReport(
        total=sum(counts.values()),
        counts=ordered,
        lanes=[
            LaneReport(name=name, paused=paused, reason=reason, since=_iso(since))
            for name, (paused, reason, since) in sorted(lanes.items())
        ],
        attention=attention,
    )


def render_status(report: StatusReport, console: Console | None = None) -> None:
    """Print the report as tables."""
    out = console or Console()
    counts = Table(title=f"Assets by state ({report.total} in all)", min_width=44)
    counts.add_column("state")
    counts.add_column("assets", justify="right")
    for state, count in report.counts.items():
        counts.add_row(state, str(count))
    out.print(counts)
    for lane in report.lanes:
        word = f"[red]PAUSED[/red] since {lane.since}: {lane.reason}" if lane.paused else "[green]open[/green]"
        out.print(f"lane {lane.name}: {word}")
    if not report.attention:
        out.print("Nothing needs a human.")
        return
    table = Table(title=f"Needs a human ({len(report.attention)})")
    for column in ("kind", "name", "state", "since", "reason", "where"):
        table.add_column(column, overflow="fold")
    for item in report.attention:
        table.add_row(item.kind, item.name, item.state, item.since, item.reason, item.where)
    out.print(table)
