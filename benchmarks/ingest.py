"""N-Drive → synced through the real daemon and the ARS emulator, each in its own process, over loopback.

For every ``--latency-ms`` value: a fresh temp dir, ``--assets`` assets of ``--size-mb`` written into
``--sessions`` session folders of ``test-workstation``, the emulator (``integration emulate-ars``, ERDA tick
0.2 s) and the daemon (``integration run``) started as subprocesses. Measured:

* throughput: assets / (last ``confirm_sync`` event - first ``ingest`` event), from the daemon's events table;
  also the wall time from starting the daemon process to the last ``confirm_sync``;
* daemon CPU per asset: user+system of the daemon process (all its threads, no children) sampled when every
  asset is synced minus the sample taken as soon as ``daemon_started`` was logged, ÷ N;
* daemon peak RSS (``VmHWM``), emulator CPU and request count as context;
* checks: all N ``synced``, emulator ``creates_committed == N``, warnings/errors in the daemon log.

Then one asset of ``--big-gb`` through the same pipeline at 0 ms: its wall time per phase and the daemon's
peak RSS, compared with the small run's (flat = streamed).

Writes the ``ingest`` section of docs/benchmarks.md (``--no-docs`` to skip) and prints a short table.
``--profile DIR`` instead runs the first latency once with py-spy attached to the daemon (only the thread holding
the GIL is sampled), prints its hotspots and writes them to the ``ingest-profile`` section; its throughput is not
a measurement, since sampling pauses the daemon. ``--repeat N`` reports the median of N runs per latency; ``--set``
overrides a daemon setting for an experiment. Every figure comes with a CPU calibration taken before and after.

    .venv/bin/python benchmarks/ingest.py [--assets 1000] [--size-mb 1] [--latency-ms 0 50] [--big-gb 2] [--skip-big]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import math
import os
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil
import tomli_w
from _common import (
    calibrate,
    command_line,
    git_revision,
    machine_summary,
    markdown_table,
    proc_status_kib,
    start_process,
    stop_process,
    text_table,
    today,
    wait_for_text,
    write_section,
)

from integration.demo import SpecimenSpec, make_guid, write_plain_asset

WORKSTATION = "test-workstation"
SECRET = "benchmark-secret"
SYNC_TICK_S = 0.2
MB = 1_000_000
GB = 1_000_000_000
#: Requests an asset actor makes while it holds its ``concurrency.assets`` slot: create, upload (one TIFF), sync.
ACTOR_REQUESTS_PER_ASSET = 3
#: "Flat" peak RSS for the big file: at most this much above the idle daemon, whatever the file size.
FLAT_RSS_MARGIN_KIB = 128 * 1024

SETTINGS: dict[str, dict[str, Any]] = {
    "ndrive": {"settle_s": 0.2, "scan_interval_s": 0.1},
    "ars": {
        "request_timeout_s": 60.0,
        "upload_timeout_s": 600.0,
        "sync_poll_initial_s": 0.1,
        "sync_poll_max_s": 0.5,
    },
    "lanes": {"probe_initial_s": 0.5},
    "retry": {"attempts": 6, "initial_s": 0.1, "max_s": 2.0, "jitter_s": 0.1},
    "concurrency": {"assets": 64, "ars_connections": 32, "copies": 4},
    "daemon": {"log_format": "json", "log_level": "info"},
}


@dataclass
class RunResult:
    """What one run measured."""

    label: str
    assets: int
    size_bytes: int
    latency_ms: float
    synced: int = 0
    states: dict[str, int] = field(default_factory=dict)
    creates_committed: int = -1
    emulator_requests: int = 0
    first_ingest_to_last_sync_s: float = math.nan
    daemon_start_to_last_sync_s: float = math.nan
    startup_s: float = math.nan
    per_asset_latency_s: list[float] = field(default_factory=list)
    phases: list[tuple[str, float]] = field(default_factory=list)
    daemon_cpu_s: float = math.nan
    daemon_system_cpu_s: float = math.nan
    daemon_thread_cpu_s: dict[str, float] = field(default_factory=dict)
    emulator_cpu_s: float = math.nan
    daemon_idle_rss_kib: int = 0
    daemon_hwm_kib: int = 0
    emulator_hwm_kib: int = 0
    log_levels: dict[str, int] = field(default_factory=dict)
    log_problems: dict[str, int] = field(default_factory=dict)
    calibration_ms: tuple[float, float] = (math.nan, math.nan)  # before, after
    all_runs: list[RunResult] = field(default_factory=list)  # with --repeat: every run (this one is the median)
    daemon_exit: int | None = None
    emulator_exit: int | None = None
    error: str = ""

    @property
    def assets_per_s(self) -> float:
        return self.assets / self.first_ingest_to_last_sync_s if self.first_ingest_to_last_sync_s > 0 else math.nan

    @property
    def cpu_ms_per_asset(self) -> float:
        return 1000 * self.daemon_cpu_s / self.assets

    @property
    def requests_per_asset(self) -> float:
        return self.emulator_requests / self.assets

    @property
    def ok(self) -> bool:
        return not self.error and self.synced == self.assets and self.creates_committed == self.assets


def median_run(runs: list[RunResult]) -> RunResult:
    """The run with the median throughput, carrying all runs (a failed run makes the result failed)."""
    ordered = sorted(runs, key=lambda r: (not r.ok, r.assets_per_s if r.ok else 0.0))
    chosen = ordered[(len(ordered) - 1) // 2] if all(r.ok for r in runs) else next(r for r in runs if not r.ok)
    chosen.all_runs = runs
    return chosen


def concurrency_bounds(latency_ms: float, requests_per_asset: float) -> tuple[float, float]:
    """(assets/s allowed by ``concurrency.assets``, by ``concurrency.ars_connections``) at ``latency_ms``.

    The first counts only the requests made under an asset slot (create, upload, synchronize); the second every
    request the daemon sends (the status polls too), since all of them share the connection limiter.
    """
    if latency_ms <= 0:
        return math.inf, math.inf
    latency_s = latency_ms / 1000
    slots = SETTINGS["concurrency"]["assets"] / (ACTOR_REQUESTS_PER_ASSET * latency_s)
    connections = SETTINGS["concurrency"]["ars_connections"] / (requests_per_asset * latency_s)
    return slots, connections


# -- set-up --------------------------------------------------------------------------------------------------


def write_assets(ndrive: Path, *, count: int, size: int, sessions: int, seed: int) -> None:
    """``count`` assets of ``size`` bytes spread over ``sessions`` session folders (distinct ``taken`` seconds)."""
    rng = random.Random(seed)
    spec = SpecimenSpec(workstation=WORKSTATION)
    start = datetime(2025, 6, 1, 8, 0, tzinfo=UTC)
    folders = [ndrive / WORKSTATION / f"session-{i:02d}" for i in range(min(sessions, count))]
    for folder in folders:
        folder.mkdir(parents=True)
    for i in range(count):
        taken = start + timedelta(seconds=i)
        write_plain_asset(
            folders[i % len(folders)],
            guid=make_guid(rng, taken),
            spec=spec,
            image_bytes=size,
            taken=taken,
            rng=rng,
        )


def apply_override(text: str) -> None:
    """``section.key=value`` (value in TOML syntax) into :data:`SETTINGS`."""
    dotted, _, raw = text.partition("=")
    section, _, key = dotted.strip().partition(".")
    if not (section and key and raw):
        raise SystemExit(f"--set wants SECTION.KEY=VALUE, got {text!r}")
    SETTINGS.setdefault(section, {})[key] = tomllib.loads(f"v = {raw.strip()}")["v"]


def daemon_config(root: Path, port: int) -> dict[str, Any]:
    base = f"http://127.0.0.1:{port}"
    config: dict[str, Any] = {
        "ndrive": {"root": str(root / "ndrive"), "workstations": [WORKSTATION], **SETTINGS["ndrive"]},
        "storage": {"root": str(root / "storage"), "database": str(root / "track.sqlite3")},
        "ars": {
            "base_url": base,
            "token_url": f"{base}/keycloak/realms/dassco/protocol/openid-connect/token",
            "client_id": "integration",
            **SETTINGS["ars"],
        },
        "retry": SETTINGS["retry"],
        "concurrency": SETTINGS["concurrency"],
        "daemon": SETTINGS["daemon"],
        "pipelines": {"test-pipeline": {"jobs": [["asset_loader"]]}},
        "executor": {"kind": "none"},  # the ingest lane alone: assets stop at synced
    }
    return config


def integration_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "integration", *args]


# -- one run -------------------------------------------------------------------------------------------------


def count_states(database: Path) -> dict[str, int]:
    if not database.exists():
        return {}
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5)) as connection:
        rows = connection.execute("SELECT state, COUNT(*) FROM assets GROUP BY state").fetchall()
    return {str(state): int(count) for state, count in rows}


def thread_cpu(pid: int) -> dict[int, tuple[str, float]]:
    """CPU seconds (user + system) of every live thread of ``pid``: tid -> (name, seconds)."""
    ticks = os.sysconf("SC_CLK_TCK")
    threads: dict[int, tuple[str, float]] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (task / "stat").read_text()
            name = stat[stat.index("(") + 1 : stat.rindex(")")]
            fields = stat[stat.rindex(")") + 2 :].split()
            threads[int(task.name)] = (name, (int(fields[11]) + int(fields[12])) / ticks)
    return threads


def split_thread_cpu(
    pid: int, before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]], total: float
) -> dict[str, float]:
    """The run's CPU split: the trio thread (main), the SQLite thread, and the rest (trio worker threads)."""

    def spent(tid: int) -> float:
        return after.get(tid, ("", 0.0))[1] - before.get(tid, ("", 0.0))[1]

    main = spent(pid)
    # Trio names its worker threads at the OS level ("Trio thread N", or the function it runs); the SQLite
    # thread is a plain threading.Thread, which keeps the process name.
    process_name = after.get(pid, ("python", 0.0))[0]
    sqlite_threads = [tid for tid, (name, _) in after.items() if tid != pid and name == process_name]
    database = sum(spent(tid) for tid in sqlite_threads)
    return {"trio (main)": main, "sqlite": database, "worker threads": max(0.0, total - main - database)}


def wait_until_started(daemon: subprocess.Popen[bytes], log: Path, database: Path) -> None:
    """Until ``daemon_started`` is logged; below info level (an experiment): until the schema is migrated."""
    if SETTINGS["daemon"]["log_level"] in {"debug", "info"}:
        wait_for_text(daemon, log, r'"event": "daemon_started"', timeout_s=60)
        return
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and daemon.poll() is None:
        with contextlib.suppress(sqlite3.Error):
            count_states(database)
            if database.exists():
                return
        time.sleep(0.005)
    raise RuntimeError(f"the daemon did not start (exit code {daemon.returncode}); see {log}")


def wait_until_done(
    database: Path, count: int, daemon: subprocess.Popen[bytes], emulator: subprocess.Popen[bytes], timeout_s: float
) -> dict[str, int]:
    """Poll the track until ``count`` assets are synced (or can move no more); the last counts."""
    deadline = time.monotonic() + timeout_s
    finished = {"synced", "failed", "quarantined"}
    states: dict[str, int] = {}
    while time.monotonic() < deadline:
        with contextlib.suppress(sqlite3.OperationalError):  # the daemon may hold a write lock briefly
            states = count_states(database)
        if sum(states.get(s, 0) for s in finished) >= count:
            return states
        if daemon.poll() is not None or emulator.poll() is not None:
            raise RuntimeError(f"a process exited early (daemon {daemon.returncode}, emulator {emulator.returncode})")
        time.sleep(0.05)
    raise TimeoutError(f"not done after {timeout_s} s: {states}")


def read_events(database: Path, result: RunResult, started_at: float) -> None:
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5)) as connection:
        first_ingest, last_sync = connection.execute(
            "SELECT (SELECT MIN(at) FROM events WHERE trigger = 'ingest'), "
            "(SELECT MAX(at) FROM events WHERE trigger = 'confirm_sync')"
        ).fetchone()
        result.per_asset_latency_s = [
            row[0]
            for row in connection.execute(
                "SELECT c.at - i.at FROM events i JOIN events c ON c.entity_id = i.entity_id "
                "WHERE i.trigger = 'ingest' AND c.trigger = 'confirm_sync' AND c.entity_kind = 'asset' "
                "AND i.entity_kind = 'asset'"
            )
        ]
        if result.assets == 1:
            previous = started_at
            query = (
                "SELECT trigger, at FROM events WHERE trigger != 'detect' AND kind = 'transition' "
                "AND entity_kind = 'asset' ORDER BY id"
            )
            for trigger, at in connection.execute(query):
                result.phases.append((trigger, at - previous))
                previous = at
    if first_ingest is not None and last_sync is not None:
        result.first_ingest_to_last_sync_s = last_sync - first_ingest
        result.daemon_start_to_last_sync_s = last_sync - started_at


def read_log(log: Path, result: RunResult) -> None:
    """Count the daemon's log lines per level and its warnings/errors per event name."""
    levels: collections.Counter[str] = collections.Counter()
    problems: collections.Counter[str] = collections.Counter()
    for line in log.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            levels["(not JSON)"] += 1
            problems[line[:80]] += 1
            continue
        level = str(entry.get("level", "?"))
        levels[level] += 1
        if level not in {"info", "debug"}:
            problems[f"{level}: {entry.get('event', '?')}"] += 1
    result.log_levels = dict(levels)
    result.log_problems = dict(problems)


def run_once(
    label: str,
    *,
    count: int,
    size: int,
    latency_ms: float,
    sessions: int,
    timeout_s: float,
    keep: bool,
    profile: Path | None = None,
) -> RunResult:
    result = RunResult(label=label, assets=count, size_bytes=size, latency_ms=latency_ms)
    root = Path(tempfile.mkdtemp(prefix="integration-bench-"))
    emulator: subprocess.Popen[bytes] | None = None
    daemon: subprocess.Popen[bytes] | None = None
    spy: subprocess.Popen[bytes] | None = None
    before = calibrate()
    try:
        began = time.monotonic()
        print(f"[{label}] writing {count} asset(s) of {size / MB:g} MB into {root} ...", flush=True)
        write_assets(root / "ndrive", count=count, size=size, sessions=sessions, seed=count)
        os.sync()  # the files have been on the N-Drive a while: no writeback of them competes with the daemon
        print(f"[{label}] written in {time.monotonic() - began:.1f} s; starting emulator and daemon", flush=True)

        emulator_log = root / "emulator.log"
        emulator = start_process(
            integration_command(
                "emulate-ars",
                "--port=0",
                f"--data-dir={root / 'ars'}",
                f"--client-secret={SECRET}",
                f"--sync-tick-s={SYNC_TICK_S}",
                f"--latency-ms={latency_ms:g}",
            ),
            log=emulator_log,
        )
        port = int(wait_for_text(emulator, emulator_log, r"listening on http://127\.0\.0\.1:(\d+)", timeout_s=60)[1])

        config = root / "integration.toml"
        config.write_text(tomli_w.dumps(daemon_config(root, port)))
        daemon_log = root / "daemon.log"
        env = {**os.environ, "INTEGRATION_ARS_CLIENT_SECRET": SECRET}
        started_at = time.time()
        daemon = start_process(integration_command("run", "-c", str(config)), log=daemon_log, env=env)
        wait_until_started(daemon, daemon_log, root / "track.sqlite3")
        daemon_ps, emulator_ps = psutil.Process(daemon.pid), psutil.Process(emulator.pid)
        daemon_cpu0, emulator_cpu0 = daemon_ps.cpu_times(), emulator_ps.cpu_times()
        threads0 = thread_cpu(daemon.pid)
        result.startup_s = time.time() - started_at
        result.daemon_idle_rss_kib = proc_status_kib(daemon.pid, "VmRSS")
        if profile is not None:
            spy = start_profiler(daemon.pid, profile, root)

        states = wait_until_done(root / "track.sqlite3", count, daemon, emulator, timeout_s)

        daemon_cpu1, emulator_cpu1 = daemon_ps.cpu_times(), emulator_ps.cpu_times()
        threads1 = thread_cpu(daemon.pid)
        result.daemon_cpu_s = (daemon_cpu1.user + daemon_cpu1.system) - (daemon_cpu0.user + daemon_cpu0.system)
        result.daemon_system_cpu_s = daemon_cpu1.system - daemon_cpu0.system
        result.daemon_thread_cpu_s = split_thread_cpu(daemon.pid, threads0, threads1, result.daemon_cpu_s)
        result.emulator_cpu_s = (emulator_cpu1.user + emulator_cpu1.system) - (
            emulator_cpu0.user + emulator_cpu0.system
        )
        result.daemon_hwm_kib = proc_status_kib(daemon.pid, "VmHWM")
        result.emulator_hwm_kib = proc_status_kib(emulator.pid, "VmHWM")
        stats = httpx.get(f"http://127.0.0.1:{port}/_emulator/state", timeout=30).json()["stats"]
        result.creates_committed = int(stats["creates_committed"])
        result.emulator_requests = int(stats["requests_total"])
        result.states = states
        result.synced = states.get("synced", 0)
        if spy is not None:
            finish_profiler(spy)
            spy = None
        result.daemon_exit = stop_process(daemon)
        daemon = None
        result.emulator_exit = stop_process(emulator)
        emulator = None
        read_events(root / "track.sqlite3", result, started_at)
        read_log(daemon_log, result)
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        print(f"[{label}] FAILED: {result.error}", file=sys.stderr, flush=True)
    finally:
        if spy is not None:
            finish_profiler(spy)
        result.daemon_exit = stop_process(daemon) if daemon is not None else result.daemon_exit
        result.emulator_exit = stop_process(emulator) if emulator is not None else result.emulator_exit
        if keep or result.error:
            print(f"[{label}] kept {root}", flush=True)
        else:
            shutil.rmtree(root, ignore_errors=True)
    result.calibration_ms = (before, calibrate())
    print(f"[{label}] {summary_line(result)}", flush=True)
    return result


def summary_line(result: RunResult) -> str:
    return (
        f"synced {result.synced}/{result.assets}, creates_committed {result.creates_committed}, "
        f"{result.assets_per_s:.1f} assets/s over {result.first_ingest_to_last_sync_s:.2f} s, "
        f"daemon CPU {result.cpu_ms_per_asset:.2f} ms/asset "
        f"({1000 * result.daemon_system_cpu_s / result.assets:.2f} system), "
        f"peak RSS {result.daemon_hwm_kib / 1024:.0f} MiB, "
        f"threads {', '.join(f'{k} {v:.1f} s' for k, v in result.daemon_thread_cpu_s.items())}, "
        f"emulator CPU {result.emulator_cpu_s:.1f} s, {result.requests_per_asset:.2f} ARS requests/asset, "
        f"log {result.log_levels}, calibration {result.calibration_ms[0]:.0f}/{result.calibration_ms[1]:.0f} ms"
    )


# -- profiling -----------------------------------------------------------------------------------------------


def start_profiler(pid: int, out_dir: Path, root: Path) -> subprocess.Popen[bytes]:
    """py-spy (from the venv or PATH) sampling the daemon, all threads, collapsed stacks."""
    binary = shutil.which("py-spy", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if binary is None:
        raise RuntimeError("py-spy not found: .venv/bin/pip install py-spy (for profiling only)")
    out_dir.mkdir(parents=True, exist_ok=True)
    # --gil: only the thread holding the GIL is sampled, so idle worker threads do not show up as busy.
    argv = [binary, "record", "--pid", str(pid), "--rate", "100", "--gil", "--threads"]
    argv += ["--format", "raw"]
    argv += ["--output", str(out_dir / "daemon.collapsed.txt")]
    spy = start_process(argv, log=root / "py-spy.log")
    time.sleep(0.3)  # let it attach
    return spy


def finish_profiler(spy: subprocess.Popen[bytes]) -> None:
    """Stop py-spy with SIGINT (it writes its output then) and wait for it."""
    if spy.poll() is None:
        os.kill(spy.pid, signal.SIGINT)
        try:
            spy.wait(timeout=60)
        except subprocess.TimeoutExpired:
            stop_process(spy)


def _frame_name(frame: str) -> str:
    """``fn (package/module.py:123)`` -> ``fn (package/module.py)``: one entry per function, not per line."""
    if " (" not in frame:
        return frame
    name, where = frame.split(" (", 1)
    return f"{name} ({where.rstrip(')').rsplit(':', 1)[0]})"


def _package(frame: str) -> str:
    """The top-level package (or stdlib module) of a frame ``fn (package/module.py:123)``."""
    where = frame.split(" (", 1)[1] if " (" in frame else frame
    head = where.split("/", 1)[0] if "/" in where else where.rsplit(":", 1)[0]
    return head if not head.startswith("<") else "(generated code)"


def summarize_profile(collapsed: Path, *, top: int = 25) -> str:
    """Self and inclusive sample shares per function, and samples per thread, from py-spy's raw output."""
    self_counts: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    threads: collections.Counter[str] = collections.Counter()
    packages: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = stack.split(";")
        thread = frames[1] if frames and frames[0].startswith("process") and len(frames) > 1 else frames[0]
        frames = [f for f in frames if not f.startswith(("process ", "thread "))]
        total += count
        threads[thread] += count
        if frames:
            self_counts[_frame_name(frames[-1])] += count
            packages[_package(frames[-1])] += count
        for name in {_frame_name(f) for f in frames}:
            inclusive[name] += count
    lines = [f"{total} samples at 100 Hz of the thread holding the GIL", "", "per thread:"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in threads.most_common(10)]
    lines += ["", "self (leaf) time by package:"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in packages.most_common(12)]
    lines += ["", "self (leaf) time:"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in self_counts.most_common(top)]
    lines += ["", "inclusive time, integration code only:"]
    ours = [(name, n) for name, n in inclusive.most_common() if "(integration/" in name]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in ours[:top]]
    lines += ["", "inclusive time, everything:"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in inclusive.most_common(top)]
    return "\n".join(lines)


# -- report --------------------------------------------------------------------------------------------------


def _fmt(value: float, digits: int = 1) -> str:
    return "-" if math.isnan(value) else f"{value:.{digits}f}"


def _mib(kib: int) -> str:
    return f"{kib / 1024:.0f} MiB"


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _spread(result: RunResult, value: Callable[[RunResult], float], digits: int) -> str:
    """`` (range a-b)`` over the repeated runs, or nothing for a single run."""
    if len(result.all_runs) < 2:
        return ""
    values = [value(r) for r in result.all_runs]
    return f" (range {min(values):.{digits}f}-{max(values):.{digits}f})"


def _calibration_text(result: RunResult) -> str:
    runs = result.all_runs or [result]
    text = f"{result.calibration_ms[0]:.0f} / {result.calibration_ms[1]:.0f} ms"
    if len(runs) > 1:
        values = [v for r in runs for v in r.calibration_ms]
        text += f" (all runs {min(values):.0f}-{max(values):.0f})"
    return text


def _bound_text(result: RunResult) -> str:
    slots, connections = concurrency_bounds(result.latency_ms, result.requests_per_asset)
    if math.isinf(slots):
        return "- (no latency)"
    limit = min(slots, connections)
    return (
        f"{limit:.0f} (assets: {slots:.0f}, connections: {connections:.0f}); "
        f"measured = {100 * result.assets_per_s / limit:.0f} %"
    )


def _check_text(result: RunResult) -> str:
    if result.error:
        return f"**failed**: {result.error}"
    if result.ok:
        return f"all {result.assets} synced, creates_committed = {result.creates_committed}"
    return f"**{result.states}**, creates_committed = {result.creates_committed}"


def _problems_text(result: RunResult) -> str:
    problems: collections.Counter[str] = collections.Counter()
    for run in result.all_runs or [result]:
        problems.update(run.log_problems)
    if not problems:
        return "none"
    return ", ".join(f"{name} x{n}" for name, n in sorted(problems.items()))


SMALL_HEADER = (
    "ARS latency",
    "assets x size",
    "first ingest → last synced",
    "throughput",
    "concurrency bound (assets/s)",
    "daemon start → last synced",
    "per asset ingest → synced p50 / p95",
    "daemon CPU / asset: per thread (trio main, sqlite, worker threads)",
    "daemon peak RSS",
    "emulator CPU / asset",
    "ARS requests / asset",
    "calibration before / after",
    "check",
)


def small_row(result: RunResult) -> list[str]:
    return [
        f"{result.latency_ms:g} ms",
        f"{result.assets} x {result.size_bytes / MB:g} MB",
        f"{_fmt(result.first_ingest_to_last_sync_s, 2)} s",
        f"**{_fmt(result.assets_per_s)} assets/s**{_spread(result, lambda r: r.assets_per_s, 1)}",
        _bound_text(result),
        f"{_fmt(result.daemon_start_to_last_sync_s, 2)} s",
        f"{_fmt(statistics.median(result.per_asset_latency_s) if result.per_asset_latency_s else math.nan, 2)} / "
        f"{_fmt(_percentile(result.per_asset_latency_s, 0.95), 2)} s",
        f"**{_fmt(result.cpu_ms_per_asset, 1)} ms**{_spread(result, lambda r: r.cpu_ms_per_asset, 1)}: "
        + ", ".join(f"{name} {1000 * cpu / result.assets:.1f}" for name, cpu in result.daemon_thread_cpu_s.items())
        + f"; {_fmt(1000 * result.daemon_system_cpu_s / result.assets, 1)} of it system",
        _mib(result.daemon_hwm_kib),
        f"{_fmt(1000 * result.emulator_cpu_s / result.assets, 1)} ms",
        _fmt(result.requests_per_asset, 2),
        _calibration_text(result),
        _check_text(result),
    ]


def verdicts(small: list[RunResult], big: RunResult | None, cpus: int) -> list[str]:
    lines: list[str] = []
    zero = next((r for r in small if r.latency_ms == 0), None)
    if zero is not None:
        met = zero.ok and zero.assets_per_s >= 150
        lines.append(
            f"- ≥ 150 assets/s at 0 ms on 2 cores: **{'met' if met else 'NOT met'}** — "
            f"{_fmt(zero.assets_per_s)} assets/s on {cpus} CPU(s)."
        )
    for result in small:
        if result.latency_ms <= 0:
            continue
        slots, connections = concurrency_bounds(result.latency_ms, result.requests_per_asset)
        limit = min(slots, connections)
        share = result.assets_per_s / limit
        binding = "`concurrency.assets`" if slots <= connections else "`concurrency.ars_connections`"
        met = result.ok and share >= 0.8
        lines.append(
            f"- at {result.latency_ms:g} ms throughput bounded by the concurrency limit: "
            f"**{'met' if met else 'NOT met'}** — {_fmt(result.assets_per_s)} assets/s = {100 * share:.0f} % of the "
            f"bound {limit:.0f} assets/s set by {binding} (criterion here: ≥ 80 % of the bound). Daemon CPU "
            f"use in that window: {100 * result.daemon_cpu_s / result.first_ingest_to_last_sync_s:.0f} % of one core."
        )
    worst = max((r.cpu_ms_per_asset for r in small if r.ok), default=math.nan)
    if not math.isnan(worst):
        lines.append(
            f"- daemon CPU ≤ 5 ms/asset: **{'met' if worst <= 5 else 'NOT met'}** — "
            + ", ".join(f"{_fmt(r.cpu_ms_per_asset, 2)} ms at {r.latency_ms:g} ms" for r in small)
            + "."
        )
    if big is not None and big.ok:
        growth = big.daemon_hwm_kib - big.daemon_idle_rss_kib
        met = growth <= FLAT_RSS_MARGIN_KIB
        ref = f"; the {small[0].assets}-asset run peaked at {_mib(small[0].daemon_hwm_kib)}" if small else ""
        lines.append(
            f"- peak RSS flat for a {big.size_bytes / GB:g} GB file: **{'met' if met else 'NOT met'}** — "
            f"{_mib(big.daemon_hwm_kib)} peak vs {_mib(big.daemon_idle_rss_kib)} right after start-up "
            f"(+{_mib(growth)}, criterion ≤ +{_mib(FLAT_RSS_MARGIN_KIB)}){ref}."
        )
    return lines


def render(small: list[RunResult], big: RunResult | None, args: argparse.Namespace) -> str:
    cpus = len(os.sched_getaffinity(0))
    settings = SETTINGS
    parts = [
        "## N-Drive → synced (`benchmarks/ingest.py`)",
        "",
        f"- date: {today()}",
        f"- machine: {machine_summary()}",
        f"- command: `{command_line()}` at {git_revision()}",
        "- set-up: daemon (`integration run`) and emulator (`integration emulate-ars --latency-ms L "
        f"--sync-tick-s {SYNC_TICK_S:g}`) as two processes on 127.0.0.1; assets written before the daemon starts "
        f"(`write_plain_asset`: TIFF + JSON) into {args.sessions} session folders of `{WORKSTATION}`; "
        f"`ndrive` settle_s {settings['ndrive']['settle_s']}, scan_interval_s {settings['ndrive']['scan_interval_s']}; "
        f"`ars` sync_poll_initial_s {settings['ars']['sync_poll_initial_s']}, "
        f"sync_poll_max_s {settings['ars']['sync_poll_max_s']}; `concurrency` assets "
        f"{settings['concurrency']['assets']}, ars_connections {settings['concurrency']['ars_connections']}, copies "
        f"{settings['concurrency']['copies']}; `retry` attempts {settings['retry']['attempts']}; log JSON at "
        f"{settings['daemon']['log_level']} to a file.",
        "- throughput = N / (last `confirm_sync` - first `ingest` event, from the daemon's events table); the "
        'settle window is outside it but inside "daemon start → last synced". Daemon CPU = user + system of the '
        "daemon process (all threads) from `daemon_started` to the moment all N are synced, ÷ N. Peak RSS = "
        "`VmHWM` just before SIGTERM. Concurrency bound at latency L: `concurrency.assets` / "
        f"({ACTOR_REQUESTS_PER_ASSET} requests under an asset slot: create, upload, synchronize x L), and "
        "`concurrency.ars_connections` / (measured ARS requests per asset x L), as every request, status polls "
        "included, holds a connection; the smaller one applies."
        + (
            f" {args.repeat} runs per latency: the run with the median throughput is shown, the range of all runs "
            "in brackets."
            if args.repeat > 1
            else ""
        ),
        "",
        markdown_table(SMALL_HEADER, [small_row(r) for r in small]),
        "",
        "Warnings and errors in the daemon log: "
        + "; ".join(f"{r.latency_ms:g} ms: {_problems_text(r)}" for r in small)
        + ".",
    ]
    if big is not None:
        phases = ", ".join(f"{name} +{seconds:.2f} s" for name, seconds in big.phases)
        parts += [
            "",
            f"### One {big.size_bytes / GB:g} GB file (0 ms)",
            "",
            markdown_table(
                (
                    "file",
                    "daemon start → synced",
                    "phases (event, time since the previous one)",
                    "daemon RSS after start-up",
                    "daemon peak RSS",
                    "emulator peak RSS",
                    "calibration before / after",
                    "check",
                ),
                [
                    [
                        f"{big.size_bytes / GB:g} GB TIFF ({big.size_bytes:,} bytes)",
                        f"{_fmt(big.daemon_start_to_last_sync_s, 1)} s",
                        phases or "-",
                        _mib(big.daemon_idle_rss_kib),
                        f"**{_mib(big.daemon_hwm_kib)}**",
                        _mib(big.emulator_hwm_kib),
                        _calibration_text(big),
                        _check_text(big),
                    ]
                ],
            ),
            "",
            "`ingest` includes the settle window and the copy + CRC-32 + verifying re-read; `upload` is the streamed "
            "PUT (the emulator spools and hashes it); `confirm_sync` is the emulator's ERDA tick (every "
            f"{SYNC_TICK_S:g} s) plus the status poll and the CRC-32 check of the file list. Warnings and errors in "
            f"the daemon log: {_problems_text(big)}.",
        ]
    parts += ["", "### Against the targets", "", *verdicts(small, big, cpus)]
    return "\n".join(parts)


def render_profile(result: RunResult, summary: str) -> str:
    return "\n".join(
        [
            f"### Daemon profile ({result.assets} x {result.size_bytes / MB:g} MB, {result.latency_ms:g} ms)",
            "",
            f"- date: {today()}; command: `{command_line()}` at {git_revision()}",
            "- py-spy 0.4 `record --gil --threads --rate 100 --format raw` attached to the daemon from "
            "`daemon_started` until every asset is synced: only the thread holding the GIL is sampled, so this is "
            "where the interpreter spends its time (I/O and C code that release the GIL do not show up). "
            f"Sampling pauses the daemon, so the throughput of this run ({_fmt(result.assets_per_s)} assets/s) is "
            "not a measurement; the shares are what counts. Raw stacks: `daemon.collapsed.txt` in the profile folder "
            "(flamegraph-compatible).",
            f"- this run: daemon CPU {_fmt(result.cpu_ms_per_asset, 1)} ms/asset: "
            + ", ".join(f"{name} {1000 * cpu / result.assets:.1f}" for name, cpu in result.daemon_thread_cpu_s.items())
            + f"; {_fmt(result.requests_per_asset, 2)} ARS requests per asset.",
            "",
            "```",
            summary,
            "```",
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--assets", type=int, default=1000, help="assets per run (default 1000)")
    parser.add_argument("--size-mb", type=float, default=1.0, help="TIFF size in MB (10^6 bytes; default 1)")
    parser.add_argument(
        "--latency-ms", type=float, nargs="*", default=[0.0, 50.0], help="ARS latencies to run (none: big file only)"
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per latency; the median run is reported")
    parser.add_argument("--sessions", type=int, default=4, help="session folders the assets are spread over")
    parser.add_argument("--big-gb", type=float, default=2.0, help="size of the big file in GB (10^9 bytes)")
    parser.add_argument("--skip-big", action="store_true", help="skip the big-file run")
    parser.add_argument("--timeout-s", type=float, default=900.0, help="give up a run after this long")
    parser.add_argument("--keep", action="store_true", help="keep the temp dirs (daemon.log, emulator.log, DB)")
    parser.add_argument("--no-docs", action="store_true", help="do not write docs/benchmarks.md")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a daemon setting for an experiment, e.g. concurrency.ars_connections=8 (TOML value)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="instead: profile the daemon (first latency) with py-spy into DIR; writes the ingest-profile section",
    )
    args = parser.parse_args()
    for override in args.set:
        apply_override(override)

    if args.profile is not None:
        result = run_once(
            "profile",
            count=args.assets,
            size=int(args.size_mb * MB),
            latency_ms=args.latency_ms[0],
            sessions=args.sessions,
            timeout_s=args.timeout_s,
            keep=args.keep,
            profile=args.profile,
        )
        collapsed = args.profile / "daemon.collapsed.txt"
        if collapsed.exists():
            summary = summarize_profile(collapsed)
            (args.profile / "summary.txt").write_text(summary + "\n")
            print(summary)
            if not args.no_docs and result.ok:
                write_section("ingest-profile", render_profile(result, summarize_profile(collapsed, top=15)))
                print("\nwrote the ingest-profile section of docs/benchmarks.md")
        return 0 if result.ok else 1

    small = [
        median_run(
            [
                run_once(
                    f"{latency:g} ms #{attempt + 1}",
                    count=args.assets,
                    size=int(args.size_mb * MB),
                    latency_ms=latency,
                    sessions=args.sessions,
                    timeout_s=args.timeout_s,
                    keep=args.keep,
                )
                for attempt in range(args.repeat)
            ]
        )
        for latency in args.latency_ms
    ]
    big = None
    if not args.skip_big:
        big = run_once(
            f"{args.big_gb:g} GB",
            count=1,
            size=int(args.big_gb * GB),
            latency_ms=0.0,
            sessions=1,
            timeout_s=args.timeout_s,
            keep=args.keep,
        )

    header = ("latency", "assets", "assets/s", "bound", "start→synced s", "CPU ms/asset", "peak RSS", "ok")
    rows = [
        [
            f"{r.latency_ms:g} ms",
            f"{r.assets}x{r.size_bytes / MB:g}MB",
            _fmt(r.assets_per_s),
            _fmt(min(concurrency_bounds(r.latency_ms, r.requests_per_asset)), 0),
            _fmt(r.daemon_start_to_last_sync_s, 2),
            _fmt(r.cpu_ms_per_asset, 2),
            _mib(r.daemon_hwm_kib),
            "yes" if r.ok else "NO",
        ]
        for r in [*small, *([big] if big else [])]
    ]
    print()
    print(text_table(header, rows))
    print()
    print("\n".join(verdicts(small, big, len(os.sched_getaffinity(0)))))
    if not args.no_docs:
        write_section("ingest", render(small, big, args))
        print("\nwrote the ingest section of docs/benchmarks.md")
    return 0 if all(r.ok for r in small) and (big is None or big.ok) else 1


if __name__ == "__main__":
    sys.exit(main())
