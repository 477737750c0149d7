"""Processing benchmark: callbacks per second, the time from a job's end to the daemon's transition, and assets
per minute through the whole pipeline with the local executor (docs/benchmarks.md, section ``processing``).

Three parts, each in its own processes on 127.0.0.1:

1. **callbacks** — an API server over a real store (``serve`` mode of this script: the daemon's own app, its
   token check and its persistence, N jobs submitted) and a load generator in another process (``load`` mode:
   httpx over ``--connections`` connections) posting started + finished for every job; callbacks per second,
   and each callback's round trip (its transition is committed when the answer arrives);
2. **pipeline** — the real daemon (``integration run``) and the emulator, ``--assets`` drawn sheets through all
   six jobs to ``finalized``: assets per minute, the daemon's own CPU per asset (the jobs are other processes),
   and from the events: a job's FINISH (by callback) to the asset actor handing out the next group;
3. **reconciliation** — the same with ``[executor] runner = ["true"]``: every job exits without a callback, and
   the time from its exit (the executor's record) to the daemon's ``lost`` is what reconciliation costs.

Run: ``.venv/bin/python benchmarks/processing.py`` (``--no-docs`` to only print).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
import tomli_w

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    calibrate,
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

SECRET = "bench-secret"
TOKEN = "bench-token-0123456789abcdef"


# -- part 1: callbacks ----------------------------------------------------------------------------------------


def serve(database: Path, jobs: int) -> None:
    """An API server over a store with ``jobs`` submitted barcode jobs; prints its port."""
    import trio

    from integration.api import ApiDeps, JobCallbacks, Tokens, build_api, listen, serve_api
    from integration.config import parse_config
    from integration.domain import FileKind, FileRecord
    from integration.log_setup import configure_logging
    from integration.state_machines import JobTrigger
    from integration.store import NewAsset, open_store

    config = parse_config(tomli_w.dumps({
        "ndrive": {"root": "/tmp", "workstations": ["w"]}, "storage": {"root": "/tmp", "database": str(database)},
        "ars": {"base_url": "http://127.0.0.1:1", "token_url": "http://127.0.0.1:1/t", "client_id": "c"},
        "pipelines": {"p": {"jobs": [["barcode"]]}},
    }))  # fmt: skip

    configure_logging(fmt="json", level="info", stream=sys.stderr)  # as the daemon logs

    class Urls:
        def file_url(self, *, institution: str, collection: str, guid: str, name: str) -> str:
            return f"http://ars/{guid}/{name}"

    async def main() -> None:
        async with open_store(database) as store:

            async def one(i: int, limiter: trio.CapacityLimiter) -> None:
                async with limiter:
                    guid = f"g{i:06d}"
                    record = FileRecord(name=f"{guid}.tif", kind=FileKind.IMAGE, size=1, crc32=1, local_path="/x")
                    await store.assets.record_ingested(NewAsset(
                        guid=guid, pipeline="p", institution="i", collection="c", workstation="w", session="/s",
                        local_dir="/l", allocation_mb=1, metadata_json=b"{}", files=((record, "/s/x.tif"),),
                    ), actor="bench")  # fmt: skip
                    await store.jobs.plan(guid, [[("barcode", "barcode")]], actor="bench")
                    await store.jobs.transition(guid, "barcode", JobTrigger.SUBMIT, attempt=1, actor="bench")

            limiter = trio.CapacityLimiter(64)  # many at once: the store commits them in groups
            async with trio.open_nursery() as nursery:
                for i in range(jobs):
                    nursery.start_soon(one, i, limiter)

            async def wake(guid: str, reason: str) -> None:
                return None

            async def health() -> tuple[bool, dict[str, Any]]:
                return True, {}

            async def metrics() -> bytes:
                return b""

            callbacks = JobCallbacks(store=store, config=config, ars=Urls(), wake=wake)  # type: ignore[arg-type]
            app = build_api(ApiDeps(callbacks=callbacks, tokens=Tokens({"bench": TOKEN}), health=health,
                                    metrics=metrics, max_body_bytes=1_000_000))  # fmt: skip
            listener = listen("127.0.0.1", 0)
            print(f"listening on 127.0.0.1:{listener.getsockname()[1]}", flush=True)
            await serve_api(app, listener)

    trio.run(main)


def load(port: int, jobs: int, connections: int, out: Path) -> None:
    """Post started + finished for every job over ``connections`` connections; writes the figures to ``out``."""
    import httpx
    import trio

    barcode = {"barcodes": ["NHMD-1"], "asset_subject": "specimen", "MSO": False, "MOS": False, "label": False,
               "disposable": None}  # fmt: skip
    latencies: list[float] = []
    wrong: list[int] = []

    async def main() -> float:
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, headers=headers,
                                     timeout=60) as client:  # fmt: skip
            send, receive = trio.open_memory_channel[int](jobs)
            for i in range(jobs):
                send.send_nowait(i)
            send.close()

            async def worker() -> None:
                async for i in receive:
                    key = f"g{i:06d}-barcode-1"
                    for what, body in (("started", {"host": "b", "pid": 1}),
                                       ("finished", {"module_version": "1", "result": barcode})):  # fmt: skip
                        began = time.perf_counter()
                        answer = await client.post(f"/api/v1/jobs/{key}/{what}", json=body)
                        latencies.append(time.perf_counter() - began)
                        if answer.status_code != 200 or not answer.json()["applied"]:
                            wrong.append(answer.status_code)

            began = time.perf_counter()
            async with trio.open_nursery() as nursery:
                for _ in range(connections):
                    nursery.start_soon(worker)
            return time.perf_counter() - began

    elapsed = trio.run(main)
    out.write_text(json.dumps({"elapsed": elapsed, "latencies": latencies, "wrong": len(wrong)}))


_WRK_SCRIPT = """
local threads = {}
local count = 0
function setup(thread) thread:set("id", count); count = count + 1; table.insert(threads, thread) end
function init(args)
  nthreads = tonumber(args[1]); jobs = tonumber(args[2]); job = id; phase = 0
  headers = {["Authorization"] = "Bearer " .. args[3], ["Content-Type"] = "application/json"}
end
local finished = '{"module_version":"1","result":{"barcodes":["NHMD-1"],"asset_subject":"specimen",' ..
  '"MSO":false,"MOS":false,"label":false,"disposable":null}}'
request = function()
  local what, body = "started", '{"host":"b","pid":1}'
  if phase == 1 then what, body = "finished", finished end
  local path = string.format("/api/v1/jobs/g%06d-barcode-1/%s", job % jobs, what)
  if phase == 1 then job = job + nthreads end
  phase = 1 - phase
  return wrk.format("POST", path, headers, body)
end
"""


def run_wrk(port: int, work: Path, jobs: int, connections: int, seconds: float) -> dict[str, float]:
    """wrk (C, one thread per core) posting started/finished callbacks: the server gets the CPU it can use."""
    script = work / "callbacks.lua"
    script.write_text(_WRK_SCRIPT)
    threads = 1  # one core for wrk, one for the server
    result = subprocess.run(
        ["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds:g}s", "--latency", "-s", str(script),
         f"http://127.0.0.1:{port}", "--", str(threads), str(jobs), TOKEN],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    text = result.stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)

    def percentile(name: str) -> float:
        match = re.search(rf"\s{name}%\s+([\d.]+)(us|ms|s)", text)
        if match is None:
            return float("nan")
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    return {"per_s": rate, "p50_ms": percentile("50"), "p99_ms": percentile("99"),
            "non_2xx": int(non2xx.group(1)) if non2xx else 0, "output": text}  # fmt: skip


def _server(work: Path, name: str, jobs: int) -> tuple[subprocess.Popen[bytes], int]:
    log = work / f"{name}.log"
    server = start_process([sys.executable, __file__, "serve", str(work / f"{name}.sqlite3"), str(jobs)], log=log)
    return server, int(wait_for_text(server, log, r"listening on 127\.0\.0\.1:(\d+)", timeout_s=900).group(1))


def run_callbacks(work: Path, jobs: int, connections: int) -> dict[str, Any]:
    wrk = None
    if shutil.which("wrk"):  # a server with fresh jobs of its own: every wrk call is a first one until they run out
        server, port = _server(work, "api-wrk", jobs)
        try:
            wrk = run_wrk(port, work, jobs, connections, seconds=10)
        finally:
            stop_process(server)
    server, port = _server(work, "api", jobs)
    try:
        out = work / "load.json"
        cpu_before = psutil.Process(server.pid).cpu_times()
        load_process = start_process([sys.executable, __file__, "load", str(port), str(jobs), str(connections),
                                      str(out)], log=work / "load.log")  # fmt: skip
        if load_process.wait(timeout=900) != 0:
            raise RuntimeError((work / "load.log").read_text()[-2000:])
        cpu_after = psutil.Process(server.pid).cpu_times()
    finally:
        stop_process(server)
    figures = json.loads(out.read_text())
    latencies = sorted(figures["latencies"])
    calls = len(latencies)
    server_cpu = (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system)
    return {
        "calls": calls,
        "per_s": calls / figures["elapsed"],
        "p50_ms": 1000 * statistics.median(latencies),
        "p95_ms": 1000 * latencies[int(0.95 * (calls - 1))],
        "max_ms": 1000 * latencies[-1],
        "wrong": figures["wrong"],
        "server_cpu_ms_per_call": 1000 * server_cpu / calls,
        "wrk": wrk,
    }


# -- parts 2 and 3: the pipeline ------------------------------------------------------------------------------


def pipeline_config(root: Path, port: int, *, runner: list[str] | None) -> dict[str, Any]:
    base = f"http://127.0.0.1:{port}"
    jobs = [["asset_loader"], ["barcode", "ocr"], ["crop_derivatives"], ["derivative_upload"], ["cleanup"]]
    config: dict[str, Any] = {
        "ndrive": {
            "root": str(root / "ndrive"),
            "workstations": ["test-workstation"],
            "settle_s": 1.0,
            "scan_interval_s": 0.5,
        },
        "storage": {"root": str(root / "storage"), "database": str(root / "track.sqlite3")},
        "ars": {
            "base_url": base,
            "token_url": f"{base}/keycloak/realms/dassco/protocol/openid-connect/token",
            "client_id": "integration",
            "sync_poll_initial_s": 0.3,
            "sync_poll_max_s": 1.0,
        },
        "retry": {"attempts": 5, "initial_s": 0.2, "max_s": 2.0, "jitter_s": 0.1},
        "daemon": {"log_format": "json"},
        "api": {"port": 0},
        "executor": {"kind": "local", "parallel_jobs": 2, **({"runner": runner} if runner else {})},
        # the emulator seeds ARS's preparation types (slide, pinning); "sheet", our default, is not among them
        "processing": {"derivative_poll_s": 0.3, "preparation_type": "slide"},
        "pipelines": {"test-pipeline": {"jobs": jobs if runner is None else [["barcode"]]}},
    }
    if runner is not None:
        config["jobs"] = {"barcode": {"module": "barcode", "retries": 2, "time_limit_s": 60, "timeout_s": 60}}
    return config


def run_pipeline(work: Path, assets: int, *, runner: list[str] | None) -> dict[str, Any]:
    from integration.demo import SpecimenSpec, generate_session

    work.mkdir(parents=True, exist_ok=True)
    spec = SpecimenSpec(width=1600, height=2400)
    made = generate_session(work / "ndrive", "test-workstation", "bench", assets, spec=spec, seed=5)
    emulator = start_process([sys.executable, "-m", "integration", "emulate-ars", "--port", "0", "--data-dir",
                              str(work / "ars"), "--client-secret", SECRET, "--sync-tick-s", "0.3"],
                             log=work / "emulator.log")  # fmt: skip
    daemon = None
    try:
        port = int(wait_for_text(emulator, work / "emulator.log", r"listening on .*:(\d+)", timeout_s=60).group(1))
        config = work / "config.toml"
        config.write_text(tomli_w.dumps(pipeline_config(work, port, runner=runner)))
        began = time.monotonic()
        daemon = start_process([sys.executable, "-m", "integration", "run", "-c", str(config)], log=work / "daemon.log",
                               env={**os.environ, "INTEGRATION_ARS_CLIENT_SECRET": SECRET})  # fmt: skip
        done_states = ("finalized", "failed", "quarantined")
        database = work / "track.sqlite3"
        deadline = time.monotonic() + 1800
        counts: dict[str, int] = {}
        while time.monotonic() < deadline:
            with contextlib.suppress(sqlite3.Error):
                if database.exists():
                    with contextlib.closing(sqlite3.connect(database, timeout=5)) as connection:
                        counts = dict(
                            connection.execute("SELECT state, COUNT(*) FROM assets GROUP BY state").fetchall()
                        )
            if sum(counts.get(s, 0) for s in done_states) >= len(made):
                break
            time.sleep(0.2)
        elapsed = time.monotonic() - began
        cpu = psutil.Process(daemon.pid).cpu_times()
        daemon_cpu = cpu.user + cpu.system
        peak_kib = 0
        with contextlib.suppress(OSError, ValueError):
            for line in Path(f"/proc/{daemon.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak_kib = int(line.split()[1])
    finally:
        stop_process(daemon)
        stop_process(emulator)
    with contextlib.closing(sqlite3.connect(work / "track.sqlite3")) as connection:
        events = connection.execute(
            "SELECT entity_kind, entity_id, trigger, reason, at FROM events ORDER BY id"
        ).fetchall()
        first_synced = connection.execute("SELECT MIN(at) FROM events WHERE trigger = 'confirm_sync'").fetchone()[0]
        last_final = connection.execute("SELECT MAX(at) FROM events WHERE trigger = 'finalize'").fetchone()[0]
    return {
        "assets": len(made),
        "counts": counts,
        "elapsed_s": elapsed,
        "daemon_cpu_ms_per_asset": 1000 * daemon_cpu / len(made),
        "daemon_peak_mib": peak_kib / 1024,
        "processing_s": (last_final - first_synced) if first_synced and last_final else None,
        "reaction": _reaction(events),
        "reconciliation": _reconciliation(events, work / "storage" / "hpc-work" / "jobs"),
        "barcodes_right": _barcodes_right(work / "track.sqlite3", {a.guid: a.barcode for a in made}),
    }


def _reaction(events: list[tuple[Any, ...]]) -> list[float]:
    """Seconds from a job's FINISH (by callback) to the next SUBMIT of the same asset (the actor's reaction)."""
    gaps: list[float] = []
    pending: dict[str, float] = {}
    for kind, entity, trigger, _, at in events:
        if kind != "job":
            continue
        guid = entity.rsplit("-", 2)[0]
        if trigger == "finish":
            pending[guid] = at
        elif trigger == "submit" and guid in pending:
            gaps.append(at - pending.pop(guid))
    return gaps


def _reconciliation(events: list[tuple[Any, ...]], jobs_root: Path) -> list[float]:
    """Seconds from a job's exit (the executor's exit record) to the daemon's LOSE/FAIL of it."""
    gaps = []
    for kind, entity, trigger, _, at in events:
        exit_file = jobs_root / entity / "exit"
        if kind == "job" and trigger in ("lose", "fail") and exit_file.exists():
            gaps.append(at - exit_file.stat().st_mtime)
    return gaps


def _barcodes_right(database: Path, generated: dict[str, str]) -> int:
    right = 0
    with contextlib.closing(sqlite3.connect(database)) as connection:
        for guid, barcode in generated.items():
            row = connection.execute(
                "SELECT result FROM jobs WHERE guid = ? AND module = 'barcode'", (guid,)
            ).fetchone()
            if row and row[0] and json.loads(row[0]).get("barcodes") == [barcode]:
                right += 1
    return right


def _ms(values: list[float]) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    return (f"{1000 * statistics.median(ordered):.0f} / {1000 * ordered[int(0.95 * (len(ordered) - 1))]:.0f} / "
            f"{1000 * ordered[-1]:.0f} ms")  # fmt: skip


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        serve(Path(sys.argv[2]), int(sys.argv[3]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "load":
        load(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), Path(sys.argv[5]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--callbacks", type=int, default=12000, help="jobs in the callback test (2 calls each)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--assets", type=int, default=12, help="drawn sheets through the whole pipeline")
    parser.add_argument("--no-docs", action="store_true")
    args = parser.parse_args()
    before = calibrate()
    with tempfile.TemporaryDirectory(prefix="bench-processing-") as tmp:
        work = Path(tmp)
        calls = run_callbacks(work, args.callbacks, args.connections)
        print(f"callbacks: {calls['per_s']:.0f}/s, p50 {calls['p50_ms']:.1f} ms, p95 {calls['p95_ms']:.1f} ms")
        whole = run_pipeline(work / "pipeline", args.assets, runner=None)
        print(f"pipeline: {whole['counts']} in {whole['elapsed_s']:.1f} s")
        silent = run_pipeline(work / "silent", 4, runner=["true"])
        print(f"reconciliation: {_ms(silent['reconciliation'])}")
    after = calibrate()
    per_minute = 60 * whole["assets"] / whole["elapsed_s"]
    wrk = calls["wrk"]
    wrk_row = (
        ["callbacks per second, wrk (C, 1 thread: the server gets a core of its own), 10 s, every call a new "
         "transition while the jobs last", "≥ 1 000/s",
         f"**{wrk['per_s']:.0f}/s**, p50 {wrk['p50_ms']:.1f} ms, p99 {wrk['p99_ms']:.1f} ms, {wrk['non_2xx']} non-2xx"]
        if wrk else ["callbacks per second with wrk", "≥ 1 000/s", "wrk not installed (apt install wrk)"]
    )  # fmt: skip
    rows = [
        wrk_row,
        ["callbacks per second, httpx load generator in its own process (Python: it and the server share the "
         f"2 cores; every call a new transition; {args.connections} connections)", "≥ 1 000/s",
         f"**{calls['per_s']:.0f}/s** ({calls['calls']} calls, {calls['wrong']} not applied)"],
        ["callback round trip under that load (= job report → transition committed), p50 / p95 / max", "< 0.1 s",
         f"{calls['p50_ms']:.1f} / {calls['p95_ms']:.1f} / {calls['max_ms']:.1f} ms"],
        ["a job's finish (callback) → the next group handed out, p50 / p95 / max", "< 0.1 s", _ms(whole["reaction"])],
        ["a job's exit without callback → `lost` (reconciliation), p50 / p95 / max", "≤ 2 s",
         _ms(silent["reconciliation"])],
        ["drawn sheets (1600x2400) through all six jobs to `finalized`, local executor (2 jobs at once)", "-",
         f"**{per_minute:.1f} assets/min** ({whole['counts']}, {whole['elapsed_s']:.0f} s incl. the 1 s settle)"],
        ["daemon CPU per asset outside the modules (its own process; jobs are others)", "-",
         f"{whole['daemon_cpu_ms_per_asset']:.0f} ms; peak RSS {whole['daemon_peak_mib']:.0f} MiB"],
        ["barcodes found exactly as generated", "all", f"{whole['barcodes_right']}/{whole['assets']}"],
        ["API server CPU per callback", "-", f"{calls['server_cpu_ms_per_call']:.2f} ms"],
    ]  # fmt: skip
    body = "\n".join([
        "## Processing (`benchmarks/processing.py`)",
        "",
        f"{today()}, {git_revision()}, `{command_line()}`; {machine_summary()}; calibration {before:.0f} ms before, "
        f"{after:.0f} ms after.",
        "",
        markdown_table(["what", "target", "measured"], rows),
        "",
        "The callback load generator runs in its own process (httpx, trio); the server is the daemon's own app over a "
        "real store (group commit), so each answer means the transition is committed. The pipeline runs the real "
        "daemon and the emulator as processes; its rate is bound by the jobs (python start-up, OCR: docs/hpc-ocr.md) "
        "on 2 cores, not by the daemon. Reconciliation is measured with `[executor] runner = [\"true\"]`: every job "
        "exits without a callback; the executor's exit hook wakes the asset, whose look settles the job.",
    ])  # fmt: skip
    print(body)
    if not args.no_docs:
        write_section("processing", body)


if __name__ == "__main__":
    main()
