"""Crash test: the daemon is SIGKILLed at random moments while assets flow, restarted, and loses nothing.

The emulator and the daemon run as separate processes on 127.0.0.1 (the emulator survives the daemon's
crashes, like a real ARS). Afterwards: every asset is synced, created exactly once in ARS, ARS holds the
original bytes, and every N-Drive file is still there.
"""

from __future__ import annotations

import json
import random
import signal
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from daemon_support import write_session
from process_support import (
    database_of,
    start_daemon,
    start_emulator,
    stop_emulator,
    synced_count,
    wait_for_start,
    write_daemon_config,
)

pytestmark = pytest.mark.slow


def test_sigkill_at_random_moments_loses_nothing(tmp_path: Path) -> None:
    """Several SIGKILLs while assets flow: all synced exactly once, bytes equal, N-Drive files kept."""
    rng = random.Random(20261125)
    emulator, port = start_emulator(tmp_path / "ars")
    try:
        guids: list[str] = []
        for index in range(3):
            guids += write_session(tmp_path, "test-workstation", f"s{index}", 12, seed=40 + index, size=200_000)
        config_path = write_daemon_config(tmp_path, port, concurrency={"assets": 4})
        database = database_of(config_path)
        log = tmp_path / "daemon.log"
        kills = 0
        progress = []
        while kills < 8 and synced_count(database) < len(guids):
            daemon = start_daemon(config_path, log)
            wait_for_start(log, kills + 1)
            time.sleep(rng.uniform(0.05, 0.8))
            daemon.send_signal(signal.SIGKILL)
            daemon.wait()
            kills += 1
            progress.append(synced_count(database))
            if kills == 3:  # a new session arrives between crashes
                guids += write_session(tmp_path, "test-workstation", "late", 6, seed=50, size=200_000)
        assert kills >= 4, f"the assets synced before the daemon could be killed several times: {progress}"
        daemon = start_daemon(config_path, log)
        wait_for_start(log, kills + 1)
        deadline = time.monotonic() + 120
        while synced_count(database) < len(guids) and time.monotonic() < deadline:
            time.sleep(0.2)
        stopping = time.monotonic()
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=10) == 0
        assert time.monotonic() - stopping < 5.0, "graceful stop must take less than 5 s"
        assert synced_count(database) == len(guids), log.read_text()[-3000:]

        state = httpx.get(f"http://127.0.0.1:{port}/_emulator/state", timeout=10).json()
        by_guid = (
            state["stats"]["creates_committed_by_guid"] if "stats" in state else state["creates_committed_by_guid"]
        )
        assert sorted(by_guid) == sorted(guids)
        assert set(by_guid.values()) == {1}, "an asset was created twice in ARS"

        ndrive = tmp_path / "ndrive" / "test-workstation"
        for guid in guids:
            originals = list(ndrive.glob(f"*/{guid}.*"))
            assert {p.suffix for p in originals} == {".tif", ".json"}, "an N-Drive file is gone"
            tif = next(p for p in originals if p.suffix == ".tif")
            erda = tmp_path / "ars" / "erda" / "test-institution" / "test-collection" / guid / tif.name
            assert erda.read_bytes() == tif.read_bytes()
        with sqlite3.connect(database) as connection:
            events = connection.execute("SELECT COUNT(*) FROM events WHERE trigger = 'confirm_sync'").fetchone()[0]
        assert events == len(guids), "every asset reached synced exactly once"
        print(json.dumps({"kills": kills, "assets": len(guids), "synced_after_each_kill": progress}))
    finally:
        stop_emulator(emulator)
