"""Transitions per second of the track store: group commit under concurrency vs. one awaited call at a time,
each with durable commits (``synchronous=FULL``, what the daemon uses) and with ``synchronous=NORMAL``.

Each mode gets a fresh database with ``--assets`` assets recorded (``record_ingested``), then moves every asset
along the asset actor's path (create intent → create → upload → sync intent → start_sync with its wake-up:
``--transitions`` of the three transitions, with their intents). ``grouped``: ``--tasks`` trio tasks take assets
from a shared queue, so up to that many calls wait on the database thread at once and are committed together.
``plain``: one awaited call at a time, so every call is its own transaction (the baseline without grouping).
Each mode runs ``--repeat`` times; the median is reported, with the range.

Writes the ``store`` section of docs/benchmarks.md (``--no-docs`` to skip) and prints a short table.

    .venv/bin/python benchmarks/store.py [--assets 5000] [--tasks 64] [--repeat 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import trio
from _common import (
    calibrate,
    command_line,
    git_revision,
    machine_summary,
    markdown_table,
    text_table,
    today,
    write_section,
)

from integration.domain import FileKind, FileRecord
from integration.state_machines import AssetState, AssetTrigger
from integration.store import NewAsset, Store, Wake, open_store

#: The asset actor's path: (trigger, state it starts from, the intent it opens first and settles with it).
STEPS: tuple[tuple[AssetTrigger, AssetState, str | None], ...] = (
    (AssetTrigger.CREATE, AssetState.INGESTED, "create"),
    (AssetTrigger.UPLOAD, AssetState.CREATED_IN_ARS, None),
    (AssetTrigger.START_SYNC, AssetState.UPLOADED, "sync"),
)
MODES = ("grouped, FULL", "grouped, NORMAL", "plain, FULL", "plain, NORMAL")


@dataclass
class Measurement:
    mode: str
    assets: int
    transitions: int
    record_s: float
    transition_s: float
    transition_cpu_s: float
    calls: int
    transactions: int
    calibration_ms: tuple[float, float] = (float("nan"), float("nan"))

    @property
    def per_second(self) -> float:
        return self.transitions / self.transition_s

    @property
    def records_per_second(self) -> float:
        return self.assets / self.record_s

    @property
    def group_factor(self) -> float:
        return self.calls / self.transactions if self.transactions else float("nan")


def new_asset(index: int) -> NewAsset:
    guid = f"bench-{index:07d}"
    session = "/ndrive/test-workstation/session-00"
    image = FileRecord(
        name=f"{guid}.tif", kind=FileKind.IMAGE, size=1_000_000, crc32=index + 1, local_path=f"/local/{guid}.tif"
    )
    metadata = FileRecord(
        name=f"{guid}.json", kind=FileKind.METADATA, size=900, crc32=index + 2, local_path=f"/local/{guid}.json"
    )
    return NewAsset(
        guid=guid,
        pipeline="test-pipeline",
        institution="test-institution",
        collection="test-collection",
        workstation="test-workstation",
        session=session,
        local_dir=f"/local/{guid}",
        allocation_mb=2,
        metadata_json=b'{"asset_guid": "%s", "pipeline_name": "test-pipeline"}' % guid.encode(),
        files=((image, f"{session}/{guid}.tif"), (metadata, f"{session}/{guid}.json")),
    )


async def move(store: Store, guid: str, steps: int) -> None:
    for trigger, expected, intent in STEPS[:steps]:
        if intent is not None:
            await store.assets.open_intent(guid, intent, expected=expected, actor="bench")
        wake = Wake(kind="sync_poll", due=0.0) if trigger is AssetTrigger.START_SYNC else None
        await store.assets.transition(
            guid,
            trigger,
            expected=expected,
            reason="benchmark",
            actor="bench",
            updates={"attempts": 0},
            wake=wake,
            settle=(intent, "done") if intent else None,
        )


async def run_concurrently(tasks: int, items: Iterator[int], work: Callable[[int], Awaitable[None]]) -> None:
    """Run ``work(item)`` for every item, from ``tasks`` trio tasks sharing one iterator."""

    async def worker() -> None:
        for item in items:
            await work(item)

    async with trio.open_nursery() as nursery:
        for _ in range(tasks):
            nursery.start_soon(worker)


async def measure(mode: str, *, assets: int, tasks: int, steps: int, directory: Path) -> Measurement:
    grouped = mode.startswith("grouped")
    synchronous = mode.rsplit(" ", 1)[-1]
    async with open_store(directory / "bench.sqlite3", synchronous=synchronous) as store:
        began = time.perf_counter()

        async def record(index: int) -> None:
            await store.assets.record_ingested(new_asset(index), actor="bench")

        if grouped:
            await run_concurrently(tasks, iter(range(assets)), record)
        else:
            for index in range(assets):
                await record(index)
        record_s = time.perf_counter() - began

        before = store.statistics()
        cpu, began = time.process_time(), time.perf_counter()

        async def advance(index: int) -> None:
            await move(store, f"bench-{index:07d}", steps)

        if grouped:
            await run_concurrently(tasks, iter(range(assets)), advance)
        else:
            for index in range(assets):
                await advance(index)
        transition_s = time.perf_counter() - began
        transition_cpu_s = time.process_time() - cpu
        after = store.statistics()
        counts = await store.assets.counts_by_state()
    expected_state = {1: "created_in_ars", 2: "uploaded", 3: "syncing"}[steps]
    if counts != {expected_state: assets}:
        raise AssertionError(f"{mode}: expected every asset in {expected_state}, found {counts}")
    return Measurement(
        mode=mode,
        assets=assets,
        transitions=assets * steps,
        record_s=record_s,
        transition_s=transition_s,
        transition_cpu_s=transition_cpu_s,
        calls=after.calls - before.calls,
        transactions=after.transactions - before.transactions,
    )


def median_of(runs: list[Measurement]) -> Measurement:
    return sorted(runs, key=lambda m: m.per_second)[len(runs) // 2]


def describe(runs: list[Measurement]) -> list[str]:
    best = median_of(runs)
    rates = [m.per_second for m in runs]
    return [
        best.mode,
        f"{best.assets} x {best.transitions // best.assets}",
        f"**{best.per_second:,.0f}/s** ({min(rates):,.0f}-{max(rates):,.0f})",
        f"{1e6 * best.transition_cpu_s / best.transitions:.0f} µs",
        f"{best.group_factor:.1f}",
        f"{statistics.median(m.records_per_second for m in runs):,.0f}/s",
        f"{best.calibration_ms[0]:.0f} / {best.calibration_ms[1]:.0f} ms (all runs "
        f"{min(v for m in runs for v in m.calibration_ms):.0f}-{max(v for m in runs for v in m.calibration_ms):.0f})",
    ]


HEADER = (
    "mode",
    "assets x transitions",
    "transitions/s, median (range)",
    "process CPU / transition",
    "store calls per transaction",
    "record_ingested/s",
    "calibration before / after",
)


def render(results: dict[str, list[Measurement]], args: argparse.Namespace) -> str:
    grouped, plain = median_of(results["grouped, FULL"]), median_of(results["plain, FULL"])
    normal = median_of(results["grouped, NORMAL"])
    return "\n".join(
        [
            "## Track store (`benchmarks/store.py`)",
            "",
            f"- date: {today()}",
            f"- machine: {machine_summary()}",
            f"- command: `{command_line()}` at {git_revision()}",
            f"- set-up: a fresh SQLite file (WAL; synchronous FULL or NORMAL as named) on the local disk per run; "
            f"{args.assets} assets recorded, then each moved along the actor's path: create intent → create → upload "
            f"→ sync intent → start_sync with its wake-up ({len(STEPS[: args.transitions])} transitions; a transition "
            "is counted once, its intent call is extra work inside the time). `grouped`: "
            f"{args.tasks} trio tasks share the work, so their calls meet on the database thread and commit "
            "together (`record_ingested` is grouped the same way). `plain`: one awaited call at a time, i.e. one "
            f"transaction per call. {args.repeat} runs per mode; median, range in brackets.",
            "",
            markdown_table(HEADER, [describe(results[mode]) for mode in MODES]),
            "",
            f"Group commit is {grouped.per_second / plain.per_second:.1f}x the plain rate with durable commits "
            f"({grouped.per_second:,.0f} vs {plain.per_second:,.0f} transitions/s). Durable commits "
            f"(FULL: the WAL is fsynced at every commit) cost {100 * (1 - grouped.per_second / normal.per_second):.0f} "
            "% "
            f"of the grouped rate against NORMAL ({normal.per_second:,.0f}/s); the daemon makes about 6 store calls "
            "per asset, so even the plain FULL rate is far above what ARS lets it do.",
        ]
    )


async def run_all(args: argparse.Namespace) -> dict[str, list[Measurement]]:
    results: dict[str, list[Measurement]] = {mode: [] for mode in MODES}
    for round_ in range(args.repeat):
        for mode in results:
            directory = Path(tempfile.mkdtemp(prefix="integration-store-bench-"))
            before = calibrate()
            try:
                result = await measure(
                    mode, assets=args.assets, tasks=args.tasks, steps=args.transitions, directory=directory
                )
            finally:
                shutil.rmtree(directory, ignore_errors=True)
            result.calibration_ms = (before, calibrate())
            results[mode].append(result)
            print(
                f"[{mode} {round_ + 1}/{args.repeat}] {result.per_second:,.0f} transitions/s, "
                f"{result.group_factor:.1f} calls/transaction, record_ingested {result.records_per_second:,.0f}/s, "
                f"calibration {result.calibration_ms[0]:.0f}/{result.calibration_ms[1]:.0f} ms",
                flush=True,
            )
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--assets", type=int, default=5000)
    parser.add_argument("--tasks", type=int, default=64, help="concurrent trio tasks in the grouped mode")
    parser.add_argument("--transitions", type=int, default=3, choices=(1, 2, 3), help="transitions per asset")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-docs", action="store_true", help="do not write docs/benchmarks.md")
    args = parser.parse_args()
    results = trio.run(run_all, args)
    print()
    print(text_table(HEADER, [describe(results[mode]) for mode in MODES]).replace("**", ""))
    if not args.no_docs:
        write_section("store", render(results, args))
        print("\nwrote the store section of docs/benchmarks.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
