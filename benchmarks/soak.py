"""Soak: the daemon against a hostile ARS, assets arriving over time, and random SIGKILLs — nothing lost.

The emulator runs in its own process with 10 % 5xx and some timeouts throughout, plus, over time: lost create
replies, creates committed late, CRC corruption bursts, ERDA failure bursts, a DISK_FULL period and an
ARS-down period. ``--assets`` assets (TIFF + DNG raw sibling + JSON) arrive in ``--sessions`` session folders
over time; some raw siblings arrive late (while the folder settles, or after it was imported: then in a
folder of their own, which must be rejected with a note, never lost). The daemon (``integration run``) is
SIGKILLed ``--kills`` times at random moments and restarted each time.

Checks (the run fails on any): every asset ``synced`` (or, only for a real data error, quarantined with a
reason); ARS created each asset exactly once; ERDA holds exactly the original bytes of every file of every
asset; every file written to the N-Drive is still there, unchanged, and is either part of an asset or has a
rejection note next to it; no traceback and no actor crash in the daemon's log; the daemon stops on SIGTERM.

With ``--processing`` the whole pipeline runs (local executor; asset loader, barcode and clean-up jobs: the
daemon's side of processing, not the image modules' speed; every 4th asset is a drawn sheet whose barcode is
written back to ARS while curators' updates race ours): every asset must end ``finalized``, its files in ERDA
with our CRC-32 and its N-Drive files deleted — never before that — and no job left running; every drawn
sheet's barcode must be attached in ARS.

Writes the ``soak`` (or ``soak-processing``) section of docs/benchmarks.md (``--no-docs`` to skip).

    .venv/bin/python benchmarks/soak.py [--assets 320] [--sessions 8] [--kills 20] [--seed 1] [--processing]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import shutil
import signal
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import tomli_w
from _common import (
    command_line,
    git_revision,
    machine_summary,
    markdown_table,
    start_process,
    stop_process,
    today,
    wait_for_text,
    write_section,
)

from integration.demo import SpecimenSpec, make_guid, write_plain_asset, write_specimen

WORKSTATION = "test-workstation"
#: ``--processing``: every 4th asset is a drawn sheet (with its DNG), whose barcode is written back to ARS.
DRAWN = SpecimenSpec(workstation=WORKSTATION, width=600, height=900)
SECRET = "soak-secret"
SETTLE_S = 1.5


@dataclass
class Delivered:
    """What the writer put on the N-Drive: GUIDs and, per file name, its CRC-32."""

    guids: list[str] = field(default_factory=list)
    files: dict[str, int] = field(default_factory=dict)  # file name -> CRC-32
    late: int = 0
    late_after_import: list[str] = field(default_factory=list)  # file names delivered alone, later
    drawn: dict[str, str] = field(default_factory=dict)  # GUID -> the barcode drawn on its sheet (--processing)
    done: threading.Event = field(default_factory=threading.Event)


@dataclass
class Outcome:
    """What the run found."""

    elapsed_s: float = 0.0
    kills: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    emulator: dict[str, Any] = field(default_factory=dict)
    attached: dict[str, list[str]] = field(default_factory=dict)  # drawn sheet GUID -> its specimens in ARS
    job_folders: int = 0  # job folders left under hpc-work/jobs (--processing): forgotten at finalising
    latencies: list[float] = field(default_factory=list)
    lane_pauses: dict[str, int] = field(default_factory=dict)
    rejections: int = 0
    log_levels: dict[str, int] = field(default_factory=dict)
    warnings: dict[str, int] = field(default_factory=dict)
    stop_s: float = 0.0
    fault_log: list[str] = field(default_factory=list)
    delivered: Delivered = field(default_factory=Delivered)


def crc(path: Path) -> int:
    return zlib.crc32(path.read_bytes()) & 0xFFFFFFFF


def integration(*args: str) -> list[str]:
    return [sys.executable, "-m", "integration", *args]


def write_raw(path: Path, rng: random.Random) -> None:
    path.write_bytes(b"II*\x00" + rng.randbytes(rng.randint(5_000, 60_000)))


def deliver(ndrive: Path, args: argparse.Namespace, delivered: Delivered) -> None:
    """The digitisers: sessions over time, each asset a TIFF + JSON + DNG, some DNGs late."""
    rng = random.Random(args.seed)
    spec = SpecimenSpec(workstation=WORKSTATION)
    per_session = [args.assets // args.sessions + (i < args.assets % args.sessions) for i in range(args.sessions)]
    start = datetime(2026, 1, 1, 8, tzinfo=UTC)
    late: list[tuple[float, Path, str]] = []
    for number, count in enumerate(per_session):
        folder = ndrive / WORKSTATION / f"session-{number:02}"
        folder.mkdir(parents=True)
        for index in range(count):
            taken = start + timedelta(hours=number, seconds=index)
            if PROCESSING and index % 4 == 0:  # a drawn sheet with its DNG: a barcode to write back to ARS
                asset = write_specimen(folder, spec=DRAWN, rng=random.Random(rng.getrandbits(64)), taken=taken)
                delivered.guids.append(asset.guid)
                delivered.drawn[asset.guid] = asset.barcode
                delivered.files.update((path.name, crc(path)) for path in asset.files)
                continue
            guid = make_guid(rng, taken)
            asset = write_plain_asset(
                folder, guid=guid, spec=spec, image_bytes=rng.randint(20_000, 400_000), taken=taken, rng=rng
            )
            delivered.guids.append(guid)
            for path in asset.files:
                delivered.files[path.name] = crc(path)
            raw = folder / f"{guid}.dng"
            if rng.random() < 0.2:
                late.append((time.monotonic() + rng.uniform(0.5, 4.0), folder, guid))
                delivered.late += 1
            else:
                write_raw(raw, rng)
                delivered.files[raw.name] = crc(raw)
        deadline = time.monotonic() + rng.uniform(4.0, 10.0)
        while time.monotonic() < deadline:
            late = _deliver_late(late, ndrive, rng, delivered)
            time.sleep(0.1)
    while late:
        late = _deliver_late(late, ndrive, rng, delivered)
        time.sleep(0.1)
    delivered.done.set()


def _deliver_late(
    late: list[tuple[float, Path, str]], ndrive: Path, rng: random.Random, delivered: Delivered
) -> list[tuple[float, Path, str]]:
    waiting = []
    for due, folder, guid in late:
        if time.monotonic() < due:
            waiting.append((due, folder, guid))
            continue
        target = folder / f"{guid}.dng"
        try:
            write_raw(target, rng)
        except FileNotFoundError:  # the folder was imported meanwhile: the digitiser uploads it on its own
            alone = ndrive / WORKSTATION / f"late-{guid}"
            alone.mkdir()
            target = alone / f"{guid}.dng"
            write_raw(target, rng)
            delivered.late_after_import.append(target.name)
        delivered.files[target.name] = crc(target)
    return waiting


def wait_for_starts(daemon: Any, log: Path, starts: int) -> None:
    """Wait until the daemon log shows ``starts`` ``daemon_started`` lines (this process got past its start)."""
    deadline = time.monotonic() + 120
    while log.read_text(errors="replace").count('"daemon_started"') < starts:
        if daemon.poll() is not None:
            raise RuntimeError(f"the daemon exited with {daemon.returncode} before starting; see {log}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"the daemon did not start; see {log}")
        time.sleep(0.02)


def set_faults(port: int, **faults: object) -> None:
    with contextlib.suppress(httpx.HTTPError):
        httpx.put(f"http://127.0.0.1:{port}/_emulator/faults", json=faults, timeout=10)


def harass(port: int, delivered: Delivered, stop: threading.Event, log: list[str]) -> None:
    """The fault schedule (seconds since the start), then calm once every session is delivered."""
    schedule: list[tuple[float, dict[str, object]]] = [
        (0.0, {"error_rate": 0.1, "timeout_rate": 0.02, "timeout_hang_s": 3.0}),
        (6.0, {"drop_reply_after_create": 4, "crc_corrupt_next": 6}),
        (14.0, {"erda_fail_next": 6}),
        (20.0, {"late_create_commit_next": 2, "late_create_commit_s": 2.5}),
        (26.0, {"disk_full": True}),
        (34.0, {"disk_full": False}),
        (42.0, {"down": True}),
        (50.0, {"down": False}),
        (56.0, {"crc_corrupt_next": 4, "erda_fail_next": 3}),
        (60.0, {"foreign_update_after_next_put": 6, "foreign_update_before_next_put": 4}),  # curators at work
    ]
    began = time.monotonic()
    for at, faults in schedule:
        while time.monotonic() - began < at:
            if stop.wait(0.1):
                return
        set_faults(port, **faults)
        log.append(f"{at:>4.0f} s: {json.dumps(faults)}")
    delivered.done.wait()
    while not stop.wait(5.0):  # everything delivered: let the stragglers through
        if time.monotonic() - began > 90:
            set_faults(port, error_rate=0.0, timeout_rate=0.0)
            log.append(f"{time.monotonic() - began:>4.0f} s: error_rate and timeout_rate back to 0")
            return


def states(database: Path) -> dict[str, int]:
    if not database.exists():
        return {}
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=10)) as connection:
        try:
            rows = connection.execute("SELECT state, COUNT(*) FROM assets GROUP BY state").fetchall()
        except sqlite3.OperationalError:
            return {}
    return {str(s): int(n) for s, n in rows}


#: ``--processing``: the whole pipeline (set by main)
PROCESSING = False
#: the state every asset must reach
GOAL = "synced"


def config(root: Path, port: int) -> dict[str, Any]:
    base = f"http://127.0.0.1:{port}"
    processing: dict[str, Any] = {
        "pipelines": {"test-pipeline": {"jobs": [["asset_loader"], ["barcode"], ["cleanup"]]}},
        "executor": {"kind": "local", "parallel_jobs": 2},
        "api": {"port": 0},
        "processing": {"derivative_poll_s": 0.5},
    }
    return {
        "ndrive": {
            "root": str(root / "ndrive"),
            "workstations": [WORKSTATION],
            "settle_s": SETTLE_S,
            "scan_interval_s": 0.3,
        },
        "storage": {"root": str(root / "storage"), "database": str(root / "track.sqlite3")},
        "ars": {
            "base_url": base,
            "token_url": f"{base}/keycloak/realms/dassco/protocol/openid-connect/token",
            "client_id": "integration",
            "request_timeout_s": 1.5,
            "sync_poll_initial_s": 0.3,
            "sync_poll_max_s": 2.0,
            "create_dedup_window_s": 12.0,
            "crc_mismatch_retries": 6,
        },
        "lanes": {"probe_initial_s": 0.5, "probe_max_s": 4.0},
        "retry": {"attempts": 10, "initial_s": 0.2, "max_s": 3.0, "jitter_s": 0.2},
        "concurrency": {"assets": 16, "ars_connections": 16, "copies": 4},
        "daemon": {"log_format": "json", "admin_poll_s": 0.5, "heartbeat_s": 2.0},
        "pipelines": {"test-pipeline": {"jobs": [["asset_loader"]]}},
        "executor": {"kind": "none"},  # the ingest lane alone: assets stop at synced
        **(processing if PROCESSING else {}),
    }


def emulator_settings(root: Path) -> Path:
    path = root / "emulator.toml"
    settings = {
        "data_dir": str(root / "ars"),
        "client_secret": SECRET,
        "sync_tick_s": 0.3,
        "create_dedup_s": 10.0,
        "share_dedup_s": 10.0,
        "seed": 7,
        "preparation_types": ["slide", "pinning", "sheet"],  # processing.preparation_type of the drawn sheets
        "institutions": {
            "test-institution": {
                "collections": ["test-collection"],
                "pipelines": ["test-pipeline"],
                "workstations": [WORKSTATION],
            }
        },
    }
    path.write_text(tomli_w.dumps(settings), encoding="utf-8")
    return path


def run(args: argparse.Namespace, root: Path) -> Outcome:
    outcome = Outcome()
    database = root / "track.sqlite3"
    emulator_log, daemon_log = root / "emulator.log", root / "daemon.log"
    emulator = start_process(
        integration("emulate-ars", "--port", "0", "--config", str(emulator_settings(root))), log=emulator_log
    )
    daemon = None
    stop = threading.Event()
    fault_log: list[str] = []
    try:
        port = int(wait_for_text(emulator, emulator_log, r"listening on http://127\.0\.0\.1:(\d+)", timeout_s=60)[1])
        config_path = root / "config.toml"
        config_path.write_text(tomli_w.dumps(config(root, port)), encoding="utf-8")
        (root / "ndrive" / WORKSTATION).mkdir(parents=True)
        delivered = Delivered()
        env = {"INTEGRATION_ARS_CLIENT_SECRET": SECRET, "PATH": "/usr/bin:/bin"}
        began = time.monotonic()
        daemon = start_process(integration("run", "-c", str(config_path)), log=daemon_log, env=env)
        writer = threading.Thread(target=deliver, args=(root / "ndrive", args, delivered), daemon=True)
        faults = threading.Thread(target=harass, args=(port, delivered, stop, fault_log), daemon=True)
        writer.start()
        faults.start()
        rng = random.Random(args.seed + 1)
        starts = 1
        while outcome.kills < args.kills:
            wait_for_starts(daemon, daemon_log, starts)
            time.sleep(rng.uniform(0.3, 5.0))
            daemon.send_signal(signal.SIGKILL)
            daemon.wait()
            outcome.kills += 1
            daemon = start_process(integration("run", "-c", str(config_path)), log=daemon_log, env=env)
            starts += 1
            print(
                f"kill {outcome.kills}/{args.kills} at {time.monotonic() - began:.0f} s: {states(database)}", flush=True
            )
        deadline = time.monotonic() + args.timeout_s
        while time.monotonic() < deadline:
            counts = states(database)
            done = sum(counts.get(s, 0) for s in (GOAL, "quarantined", "failed"))
            if delivered.done.is_set() and done >= len(delivered.guids):
                break
            time.sleep(1.0)
        outcome.elapsed_s = time.monotonic() - began
        wait_for_starts(daemon, daemon_log, starts)  # a daemon killed while starting is not a graceful stop
        stopping = time.monotonic()
        code = stop_process(daemon)
        outcome.stop_s = time.monotonic() - stopping
        daemon = None
        if code != 0:
            outcome.problems.append(f"the daemon exited with {code} on SIGTERM")
        stop.set()
        outcome.emulator = httpx.get(f"http://127.0.0.1:{port}/_emulator/state", timeout=10).json()["stats"]
        outcome.attached = attached_barcodes(port, list(delivered.drawn))
        check(root, delivered, outcome)
        outcome.fault_log, outcome.delivered = fault_log, delivered
    finally:
        stop.set()
        stop_process(daemon)
        stop_process(emulator)
    return outcome


def attached_barcodes(port: int, guids: list[str]) -> dict[str, list[str]]:
    """The specimen barcodes ARS holds for each of ``guids`` (asked as the daemon's client)."""
    base = f"http://127.0.0.1:{port}"
    token = httpx.post(
        f"{base}/keycloak/realms/dassco/protocol/openid-connect/token",
        data={"grant_type": "client_credentials", "client_id": "integration", "client_secret": SECRET},
        timeout=10,
    ).json()["access_token"]
    held = {}
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=10) as client:
        for guid in guids:
            record = client.get(f"/ars/api/v1/assetmetadata/{guid}").json()
            held[guid] = [item["specimen"]["barcode"] for item in record.get("asset_specimen") or []]
    return held


def check(root: Path, delivered: Delivered, outcome: Outcome) -> None:
    """Every promise of the module docstring, as problems (an empty list is a pass)."""
    database = root / "track.sqlite3"
    outcome.counts = states(database)
    problems = outcome.problems
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as db:
        assets = {guid: (state, reason) for guid, state, reason in db.execute("SELECT guid, state, reason FROM assets")}
        files = db.execute("SELECT guid, name, crc32, ndrive_path FROM files").fetchall()
        rejections = db.execute("SELECT session, name, reason FROM rejections").fetchall()
        outcome.latencies = [
            r[0]
            for r in db.execute(
                "SELECT c.at - i.at FROM events i JOIN events c ON c.entity_id = i.entity_id AND c.entity_kind = "
                "i.entity_kind WHERE i.trigger = 'ingest' AND c.trigger = 'confirm_sync' AND i.entity_kind = 'asset'"
            )
        ]
        outcome.lane_pauses = dict(
            db.execute(
                "SELECT entity_id, COUNT(*) FROM events WHERE entity_kind = 'lane' AND trigger = 'pause' "
                "GROUP BY entity_id"
            ).fetchall()
        )
    outcome.rejections = len(rejections)
    wrong = {guid: held for guid, held in outcome.attached.items() if held != [delivered.drawn[guid]]}
    if wrong:
        problems.append(
            f"{len(wrong)} drawn sheet(s) without their barcode attached in ARS, e.g. {next(iter(wrong.items()))}"
        )
    missing = sorted(set(delivered.guids) - set(assets))
    if missing:
        problems.append(f"{len(missing)} asset(s) never recorded, e.g. {missing[:3]}")
    for guid, (state, reason) in assets.items():
        if state == "quarantined" and not reason:
            problems.append(f"{guid} quarantined without a reason")
        elif state not in (GOAL, "quarantined"):
            problems.append(f"{guid} ended {state}: {reason}")
    quarantined = [g for g, (s, _) in assets.items() if s == "quarantined"]
    if quarantined:
        problems.append(f"{len(quarantined)} quarantined (no data error was injected): {assets[quarantined[0]]}")
    by_guid = outcome.emulator.get("creates_committed_by_guid", {})
    twice = {g: n for g, n in by_guid.items() if n != 1}
    if twice:
        problems.append(f"created more than once in ARS: {twice}")
    if set(by_guid) != set(assets):
        problems.append(f"ARS holds {len(by_guid)} assets, the track {len(assets)}")
    erda = root / "ars" / "erda" / "test-institution" / "test-collection"
    in_assets = set()
    for guid, name, recorded_crc, ndrive_path in files:
        in_assets.add(name)
        original = Path(ndrive_path)
        finalized = assets.get(guid, ("", ""))[0] == "finalized"
        if recorded_crc != delivered.files.get(name):
            problems.append(f"recorded wrong: {original}")
        if finalized and original.exists():
            problems.append(f"finalized, yet its N-Drive file is still there: {original}")
        elif not finalized and not original.exists():
            problems.append(f"N-Drive file gone before its asset was finalized: {original}")
        elif not finalized and crc(original) != delivered.files.get(name):
            problems.append(f"N-Drive file changed: {original}")
        if name.endswith(".json"):
            continue
        copy = erda / guid / name
        in_erda = assets.get(guid, ("", ""))[0] in ("synced", "finalized")
        if in_erda and (not copy.exists() or crc(copy) != recorded_crc):
            problems.append(f"ERDA does not hold our bytes of {guid}/{name}")
    if PROCESSING:
        leftovers = [p for p in (root / "storage").glob("*") if p.name not in ("hpc-work", "reports")]
        if leftovers:
            problems.append(f"{len(leftovers)} local folder(s) left behind, e.g. {leftovers[0]}")
        work = list((root / "storage" / "hpc-work" / "assets").glob("*"))
        if work:
            problems.append(f"{len(work)} node work folder(s) left behind, e.g. {work[0]}")
        jobs = root / "storage" / "hpc-work" / "jobs"
        outcome.job_folders = sum(1 for p in jobs.glob("*") if p.is_dir()) if jobs.exists() else 0
    rejected_names = {name for _, name, _ in rejections}
    for name in set(delivered.files) - in_assets:
        stem = name.rsplit(".", 1)[0]
        if name not in rejected_names and stem not in rejected_names:
            problems.append(f"{name} is neither in an asset nor rejected: lost")
        notes = list((root / "ndrive").rglob(f"{stem}*.error.txt")) + list((root / "ndrive").rglob(f"{name}.error.txt"))
        if not notes:
            problems.append(f"{name} was rejected without a note next to it")
    levels: dict[str, int] = {}
    warnings: dict[str, int] = {}
    for line in (root / "daemon.log").read_text(errors="replace").splitlines():
        if "Traceback" in line:
            problems.append("a traceback in the daemon log")
            break
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            level = str(entry.get("level"))
            levels[level] = levels.get(level, 0) + 1
            if level not in ("info", "debug"):
                warnings[str(entry.get("event"))] = warnings.get(str(entry.get("event")), 0) + 1
    outcome.log_levels, outcome.warnings = levels, warnings
    for crash in ("actor_crashed", "asset_actor_crashed", "asset_step_crashed", "session_import_crashed"):
        if crash in warnings:
            problems.append(f"{warnings[crash]} x {crash} in the daemon log")


def render(outcome: Outcome, args: argparse.Namespace) -> str:
    delivered = outcome.delivered
    emulator = outcome.emulator
    latencies = sorted(outcome.latencies) or [float("nan")]
    rows = [
        ["assets (TIFF + DNG + JSON)", f"{len(delivered.guids)} in {args.sessions} sessions arriving over time"],
        [
            "late raw siblings",
            f"{delivered.late} ({len(delivered.late_after_import)} after their folder was "
            "imported: delivered alone, rejected with a note)",
        ],
        ["SIGKILLs of the daemon", str(outcome.kills)],
        ["final states", ", ".join(f"{s} {n}" for s, n in sorted(outcome.counts.items()))],
        [
            "creates committed by ARS / refused as duplicates",
            f"{emulator.get('creates_committed')} / {emulator.get('duplicate_create_rejections')}",
        ],
        [
            "CRC mismatches (507) / ERDA sync failures injected",
            f"{emulator.get('uploads_crc_mismatch')} / {emulator.get('erda_sync_failures')}",
        ],
        ["lane pauses", ", ".join(f"{k} {v}" for k, v in sorted(outcome.lane_pauses.items())) or "none"],
        ["rejections (with notes)", str(outcome.rejections)],
        [
            "ingest → synced per asset, p50 / p95 / max",
            f"{statistics.median(latencies):.1f} / "
            f"{latencies[int(0.95 * (len(latencies) - 1))]:.1f} / {latencies[-1]:.1f} s",
        ],
        ["first start → all settled", f"{outcome.elapsed_s:.0f} s"],
        ["graceful stop at the end", f"{outcome.stop_s:.1f} s"],
        ["daemon log", ", ".join(f"{k} {v}" for k, v in sorted(outcome.log_levels.items()))],
        ["warnings by event", ", ".join(f"{k} {v}" for k, v in sorted(outcome.warnings.items())) or "none"],
        ["checks", "**all passed**" if not outcome.problems else "FAILED: " + "; ".join(outcome.problems[:5])],
    ]
    if PROCESSING:
        attached = sum(held == [delivered.drawn[g]] for g, held in outcome.attached.items())
        rows.insert(-1, ["drawn sheets with their barcode attached in ARS", f"{attached}/{len(delivered.drawn)}"])
        rows.insert(
            -1, ["job folders left under hpc-work/jobs (a job still exiting at a SIGKILL)", str(outcome.job_folders)]
        )
    return "\n".join(
        [
            "## Soak, whole pipeline (`benchmarks/soak.py --processing`)"
            if PROCESSING
            else "## Soak (`benchmarks/soak.py`)",
            "",
            f"- date: {today()}",
            f"- machine: {machine_summary()}",
            f"- command: `{command_line()}` at {git_revision()}",
            "- set-up: emulator (`integration emulate-ars`, ERDA tick 0.3 s, de-dup windows 10 s) and daemon "
            "(`integration run`) as two processes on 127.0.0.1; faults through `/_emulator/faults`:",
            "",
            "```",
            *outcome.fault_log,
            "```",
            "",
            markdown_table(("", "figure"), rows),
            "",
            (
                "Checked: every drawn sheet's barcode attached in ARS (the curators' updates notwithstanding); "
                "every asset finalized (only a real data error may quarantine one; none was injected); ARS "
                "created each asset exactly once; ERDA holds exactly the original bytes of every file; every N-Drive "
                "file of a finalized asset is deleted and every other one still there, unchanged; no local copy and "
                "no node work folder left behind; no traceback or actor crash in the daemon log; SIGTERM stops it."
                if PROCESSING
                else "Checked: every asset synced (only a real data error may quarantine one, with a reason; none was "
                "injected); ARS created each asset exactly once; ERDA holds exactly the original bytes of every file; "
                "every file written to the N-Drive is still there, unchanged, and is part of an asset or has a "
                "rejection note; no traceback or actor crash in the daemon log; SIGTERM stops the daemon."
            ),
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--assets", type=int, default=320)
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout-s", type=float, default=1200.0, help="give up this long after the last kill")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs, database, N-Drive)")
    parser.add_argument("--no-docs", action="store_true", help="do not write docs/benchmarks.md")
    parser.add_argument("--processing", action="store_true", help="the whole pipeline, to finalized")
    args = parser.parse_args()
    global PROCESSING, GOAL
    PROCESSING, GOAL = args.processing, "finalized" if args.processing else "synced"
    root = Path(tempfile.mkdtemp(prefix="integration-soak-"))
    print(f"soak in {root}", flush=True)
    try:
        outcome = run(args, root)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print(render(outcome, args))
    if not args.no_docs:
        section = "soak-processing" if PROCESSING else "soak"
        write_section(section, render(outcome, args))
        print(f"\nwrote the {section} section of docs/benchmarks.md")
    return 0 if not outcome.problems else 1


if __name__ == "__main__":
    sys.exit(main())
