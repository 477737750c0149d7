"""Crash test for processing: the daemon is SIGKILLed at random moments while assets are processed and
finalised (its local jobs die with it), restarted, and in the end every asset is finalized, no job key ran
twice at once, nothing was deleted before ARS proved it holds the bytes, and nothing is left behind."""

from __future__ import annotations

import itertools
import json
import random
import signal
import sqlite3
import time
import zlib
from pathlib import Path

import psutil
import pytest

from daemon_support import write_session
from process_support import (
    database_of,
    start_daemon,
    start_emulator,
    state_count,
    stop_emulator,
    wait_for_start,
    write_daemon_config,
)

pytestmark = pytest.mark.slow

ERDA = Path("ars") / "erda" / "test-institution" / "test-collection"


def _job_intervals(jobs_root: Path) -> dict[tuple[str, str], list[tuple[float, float]]]:
    """(asset, job) -> (start, end) of each attempt that ran, from the executor's folders."""
    runs: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for folder in jobs_root.iterdir():
        if not folder.is_dir() or not (folder / "pid").exists():
            continue
        guid, job, _ = folder.name.rsplit("-", 2)
        end = (folder / "exit").stat().st_mtime if (folder / "exit").exists() else time.time()
        runs.setdefault((guid, job), []).append(((folder / "pid").stat().st_mtime, end))
    return runs


def test_sigkill_during_processing_and_finalising_loses_nothing(tmp_path: Path) -> None:
    rng = random.Random(20261202)
    emulator, port = start_emulator(tmp_path / "ars")
    try:
        guids = write_session(tmp_path, "test-workstation", "s1", 10, seed=60, size=200_000)
        config_path = write_daemon_config(
            tmp_path,
            port,
            concurrency={"assets": 4},
            executor={"kind": "local", "parallel_jobs": 2},
            pipelines={"test-pipeline": {"jobs": [["asset_loader"], ["barcode"], ["cleanup"]]}},
        )
        database = database_of(config_path)
        log = tmp_path / "daemon.log"
        kills, progress = 0, []
        while kills < 8 and state_count(database, "finalized") < len(guids):
            daemon = start_daemon(config_path, log)
            wait_for_start(log, kills + 1)
            time.sleep(rng.uniform(0.5, 3.0))
            daemon.send_signal(signal.SIGKILL)
            daemon.wait()
            kills += 1
            progress.append(state_count(database, "finalized"))
            # nothing deleted early: an asset not yet finalized still has its N-Drive files
            with sqlite3.connect(database) as connection:
                open_assets = [
                    row[0] for row in connection.execute("SELECT guid FROM assets WHERE state != 'finalized'")
                ]
            for guid in open_assets:
                assert len(list((tmp_path / "ndrive").rglob(f"{guid}.*"))) == 2, f"{guid} lost a file before finalizing"
        assert kills >= 4, f"the assets finished before the daemon could be killed several times: {progress}"
        daemon = start_daemon(config_path, log)
        wait_for_start(log, kills + 1)
        deadline = time.monotonic() + 180
        while state_count(database, "finalized") < len(guids) and time.monotonic() < deadline:
            time.sleep(0.2)
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=15) == 0
        assert state_count(database, "finalized") == len(guids), log.read_text()[-3000:]

        with sqlite3.connect(database) as connection:
            crcs = connection.execute("SELECT guid, name, crc32 FROM files WHERE kind != 'metadata'").fetchall()
            finalize_events = connection.execute("SELECT COUNT(*) FROM events WHERE trigger = 'finalize' "
                                                 "AND entity_kind = 'asset'").fetchone()[0]  # fmt: skip
        assert finalize_events == len(guids)
        for guid, name, crc in crcs:  # ERDA holds what was copied in, and only then was the original deleted
            assert zlib.crc32((tmp_path / ERDA / guid / name).read_bytes()) == crc
        for (guid, job), runs in _job_intervals(tmp_path / "storage" / "hpc-work" / "jobs").items():
            runs.sort()
            for (_, end), (start, _) in itertools.pairwise(runs):
                assert start >= end - 0.05, f"two attempts of {guid} {job} ran at once"
        assert [p for p in (tmp_path / "ndrive").rglob("*") if p.is_file()] == []
        assert not any((tmp_path / "storage" / guid).exists() for guid in guids)
        assert list((tmp_path / "storage" / "hpc-work" / "assets").glob("*")) == []
        leftovers = [p.info["cmdline"] for p in psutil.process_iter(["cmdline"]) if "run" in (p.info["cmdline"] or [])
                     and "--job-key" in (p.info["cmdline"] or [])]  # fmt: skip
        assert leftovers == []
        print(json.dumps({"kills": kills, "assets": len(guids), "finalized_after_each_kill": progress}))
    finally:
        stop_emulator(emulator)
