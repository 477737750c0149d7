"""``integration status GUID``: one asset — state, reason, files (local and N-Drive), next wake-up, timeline."""

from __future__ import annotations

import time
from pathlib import Path

import msgspec

from integration.config import Config
from integration.state_machines import DRIVERS, AssetState, Driver
from integration.status._render import ago, stamp, wrap
from integration.store import (
    AssetRecord,
    DerivativeRecord,
    EventRecord,
    JobRecord,
    MosEntry,
    Rejection,
    StoredFile,
    open_reader,
)

__all__ = ["AssetReport", "collect_asset", "render_asset"]

_EVENTS = 40


class AssetReport(msgspec.Struct, frozen=True, kw_only=True):
    """Everything known about one asset."""

    record: AssetRecord
    files: list[StoredFile]
    events: list[EventRecord]
    rejections: list[Rejection]
    jobs: list[JobRecord] = []
    derivatives: list[DerivativeRecord] = []
    mos: MosEntry | None = None
    next_step: str = ""
    at: float


def collect_asset(config: Config, guid: str) -> AssetReport | list[str]:
    """The report of ``guid`` — or, when no asset has exactly that GUID, the GUIDs that start with it."""
    with open_reader(Path(config.storage.database)) as reader:
        record = reader.asset(guid)
        if record is None:
            return reader.find(guid)
        return AssetReport(
            record=record,
            files=reader.files(guid),
            events=reader.events(guid, limit=_EVENTS),
            rejections=reader.rejections_of(guid),
            jobs=reader.jobs(guid),
            derivatives=reader.derivatives(guid),
            mos=reader.mos(guid),
            next_step=_next_step(record, time.time()),
            at=time.time(),
        )


def _next_step(record: AssetRecord, now: float) -> str:
    """What happens to the asset next, and why, in words."""
    wake = record.wake
    if wake is not None and wake.kind == "wait":
        return f"waits until {wake.lane} reopens ({wake.reason})"
    if wake is not None and wake.due is not None:
        when = "now" if wake.due <= now else f"at {stamp(wake.due)} (in {ago(wake.due - now)})"
        who = "the sync poller asks ARS" if wake.kind == "sync_poll" else "an asset actor takes it up"
        return f"{who} {when}: {wake.reason}"
    driver = DRIVERS[record.state]
    if driver is Driver.OPERATOR:
        return f"needs a human: fix the cause, then `integration retry {record.guid} --reason TEXT`"
    if driver is Driver.ASSET_ACTOR:
        return "an asset actor is moving it (or takes it up at the next start)"
    if record.state is AssetState.FINALIZED:
        return "finished: nothing left to do"
    return f"moved on by the {driver.value}"


def render_asset(report: AssetReport) -> str:
    """The asset report as text that fits 80 columns."""
    r = report.record
    lines = [f"asset {r.guid}"]
    lines += wrap(
        f"{r.state.value} since {stamp(r.state_since)} ({ago(report.at - r.state_since)} ago)",
        "  " * 7,
        first="  state:      ",
    )
    if r.state is AssetState.PAUSED and r.resume_state:
        lines.append(f"  resumes to: {r.resume_state.value}")
    if r.reason:
        lines += wrap(r.reason, " " * 14, first="  reason:     ")
    lines += wrap(report.next_step, " " * 14, first="  next:       ")
    lines.append(f"  in ARS:     {'yes' if r.in_ars else 'not known to be'}")
    lines.append(f"  counters:   attempts {r.attempts}, CRC mismatches {r.crc_mismatches}, resyncs {r.resyncs}")
    if r.intents:
        lines += wrap(
            ", ".join(sorted(r.intents)) + " (started, outcome not yet recorded: ARS is asked "
            "before anything is repeated)",
            " " * 14,
            first="  intents:    ",
        )
    lines += wrap(
        f"{r.institution} / {r.collection}, workstation {r.workstation}, pipeline {r.pipeline}",
        " " * 14,
        first="  from:       ",
    )
    lines += wrap(r.session, " " * 14, first="  session:    ")
    lines.append("  files:" + (" (the local and N-Drive copies were deleted once ERDA held them)"
                               if r.state is AssetState.FINALIZED else ""))  # fmt: skip
    for f in report.files:
        uploaded = "in ARS" if f.uploaded else "not uploaded"
        lines.append(f"    {f.record.name}")
        lines.append(f"      {f.record.kind.value}, {f.record.size} bytes, CRC-32 {f.record.crc32:08x}, {uploaded}")
        lines += wrap(f.record.local_path, " " * 15, first="      local:   ")
        lines += wrap(f.ndrive_path, " " * 15, first="      N-Drive: ")
    if report.jobs:
        lines.append("  jobs:")
    for job in report.jobs:
        version = f", {job.module} {job.module_version}" if job.module_version else ""
        lines += wrap(f"{job.job}: {job.state.value}, attempt {job.attempt}{version}", " " * 6, first="    ")
        if job.reason and job.state.value not in ("done", "waiting"):
            lines += wrap(job.reason.splitlines()[0], " " * 6, first="      ")
        if job.state.value not in ("done", "waiting", "cancelled"):
            lines += wrap(f"key {job.key}", " " * 6, first="      ")
    for child in report.derivatives:
        why = f" — {child.reason}" if child.reason and child.state.value == "failed" else ""
        lines += wrap(f"{child.name}: {child.state.value}{why}", " " * 6, first="  derivative: ")
    if report.mos is not None:
        m = report.mos
        what = "the label" if m.label else f"specimen {m.spid}"
        linked = ", ".join(m.connections) if m.connections else "no other asset yet"
        lines += wrap(f"label id {m.unique_label_id} ({what}); linked with {linked}", " " * 14, first="  MOS:        ")
    for rejection in report.rejections:
        lines += wrap(f"#{rejection.id} {rejection.status}: {rejection.reason}", "      ", first="  rejection: ")
    lines.append(f"  events (last {len(report.events)}):")
    for event in report.events:
        lines += _event(event)
    return "\n".join(lines)


def _event(event: EventRecord) -> list[str]:
    if event.kind == "transition":
        what = f"{event.from_state or '(new)'} -> {event.to_state} ({event.trigger})"
    else:
        what = f"{event.kind} {event.trigger}"
    head = f"{stamp(event.at)}  {what}  by {event.actor}"
    return wrap(head, " " * 6, first="    ") + wrap(event.reason, " " * 6)
