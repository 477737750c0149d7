"""``integration status`` as text: short lines that fit an 80-column terminal, reasons wrapped, times in UTC."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime

from integration.status._report import AttentionItem, StatusReport

__all__ = ["WIDTH", "ago", "render_status", "stamp", "wrap"]

WIDTH = 80


def stamp(at: float | None) -> str:
    """An instant as ``2026-12-01 10:00:00Z`` (``-`` when unknown)."""
    if at is None:
        return "-"
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def ago(seconds: float) -> str:
    """A duration the way a human says it: ``12 s``, ``5 min``, ``3 h``, ``2 d``."""
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if abs(seconds) >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


def wrap(text: str, indent: str, *, first: str = "") -> list[str]:
    """``text`` wrapped to :data:`WIDTH`, the first line starting with ``first`` (or ``indent``)."""
    return textwrap.wrap(
        text,
        width=WIDTH,
        initial_indent=first or indent,
        subsequent_indent=indent,
        break_long_words=True,
        break_on_hyphens=False,
    ) or [first or indent]


def render_status(report: StatusReport) -> str:
    """The whole report as text."""
    lines = ["integration status", *wrap(report.database, " " * 12, first="  database: ")]
    lines.append(f"  at:       {stamp(report.at)}")
    lines += ["", *_daemon(report)]
    lines += ["", f"Assets by state ({report.total} in all)"]
    lines += [f"  {state:<20}{count:>10}" for state, count in report.counts.items()] or ["  (none yet)"]
    lines += ["", "Lanes"]
    lanes = [lane for lane in report.lanes if lane.kind == "lane"]
    for lane in lanes:
        if not lane.paused:
            lines.append(f"  {lane.name:<10} open")
            continue
        lines.append(f"  {lane.name:<10} PAUSED since {stamp(lane.since)}")
        probe = _next_probe(lane.next_probe, report)
        lines += wrap(f"{lane.cycles} failed probe(s), {probe}; {lane.waiting} asset(s) wait.", " " * 13)
        lines += wrap(lane.reason, " " * 13)
    if not lanes:
        lines.append("  all open (none has ever paused)")
    if report.processing is not None:
        load = report.processing
        lines += ["", "Processing (now / limit)"]
        lines.append(f"  assets on the HPC       {load.assets_on_hpc:>8} / {load.max_assets_on_hpc}")
        lines.append(f"  open shares (MB)        {load.open_share_mb:>8} / {load.max_open_share_mb}")
        lines.append(f"  derivatives (MB)        {load.derivative_mb:>8} / {load.max_derivative_mb}")
        jobs = ", ".join(f"{state} {n}" for state, n in sorted(load.jobs.items())) or "none yet"
        lines += wrap(f"jobs: {jobs}", "    ", first="  ")
    waits = report.waits
    if waits.count:
        lines += ["", f"Waiting on their own ({waits.count}; they go on by themselves)"]
        if waits.longest_guid is not None and waits.longest_since is not None:
            lines += wrap(
                f"longest: {waits.longest_guid}, for {ago(report.at - waits.longest_since)}: {waits.longest_reason}",
                "    ",
                first="  ",
            )
    lines.append("")
    if not report.attention:
        lines.append("Nothing needs a human.")
        return "\n".join(lines)
    shown = len(report.attention)
    more = f", {shown} shown" if report.attention_total > shown else ""
    lines.append(f"Needs a human ({report.attention_total}{more})")
    for item in report.attention:
        lines += _item(item, report.at)
    lines.append("")
    lines += wrap(
        "Move assets on with `integration retry GUID... --reason TEXT`; close rejections you have dealt with "
        "by `integration ack ID... --reason TEXT`; see one asset with `integration status GUID`.",
        "",
    )
    return "\n".join(lines)


def _next_probe(at: float | None, report: StatusReport) -> str:
    if at is None:
        return "probing now"
    if not report.daemon.running:
        return "probed again once the daemon runs"
    if at <= report.at:
        return "probe due now"
    return f"next probe in {ago(at - report.at)}"


def _daemon(report: StatusReport) -> list[str]:
    daemon = report.daemon
    beat = "" if daemon.last_heartbeat is None else f", last heartbeat {ago(report.at - daemon.last_heartbeat)} ago"
    if daemon.running:
        return [f"Daemon: running (PID {daemon.pid or 'unknown'}){beat}"]
    if daemon.command_pid is not None:
        return [f"Daemon: not running{beat}", f"  an `integration` command (PID {daemon.command_pid}) is working on it"]
    return [f"Daemon: not running{beat}"]


def _item(item: AttentionItem, now: float) -> list[str]:
    ident = f" #{item.id}" if item.id is not None else ""
    since = f" since {stamp(item.since)}" if item.since else ""
    head = f"- {item.kind}{ident} {item.name}: {item.state}{since}"
    lines = wrap(head, "    ", first="  ")
    lines += wrap(item.reason, "    ")
    if item.where:
        lines += wrap(f"in {item.where}", "    ")
    return lines
