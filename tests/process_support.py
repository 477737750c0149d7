"""Helpers for tests that run the emulator and the daemon as separate processes on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import tomli_w

from daemon_support import config_dict

__all__ = [
    "SECRET",
    "database_of",
    "start_daemon",
    "start_emulator",
    "state_count",
    "stop_emulator",
    "synced_count",
    "wait_for_start",
    "write_daemon_config",
]

SECRET = "crash-secret"


def start_emulator(data_dir: Path, *extra: str) -> tuple[subprocess.Popen[str], int]:
    """``integration emulate-ars`` on a free port (40 ms latency, ERDA tick 0.2 s); returns it and its port."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "integration",
            "emulate-ars",
            "--port",
            "0",
            "--data-dir",
            str(data_dir),
            "--client-secret",
            SECRET,
            "--sync-tick-s",
            "0.2",
            "--latency-ms",
            "40",
            *extra,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert "listening on" in line, line
    return process, int(line.rsplit(":", 1)[1])


def stop_emulator(process: subprocess.Popen[str]) -> None:
    """SIGTERM the emulator of :func:`start_emulator` and wait for it."""
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=10)
    if process.stdout is not None:
        process.stdout.close()


def write_daemon_config(root: Path, port: int, **sections: dict[str, object]) -> Path:
    """``<root>/config.toml`` for a daemon process (:func:`start_daemon`): the tests' configuration for the one
    workstation ``test-workstation``, its secret left to the environment, JSON logs; ``sections`` override."""
    data = config_dict(root, port, ndrive={"workstations": ["test-workstation"]}, **sections)
    del data["ars"]["client_secret"], data["ars"]["allow_plaintext_secret"]
    data["daemon"] = {"log_format": "json", **data.get("daemon", {})}
    path = root / "config.toml"
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    return path


def database_of(config: Path) -> Path:
    """The track database a configuration file names."""
    return Path(tomllib.loads(config.read_text(encoding="utf-8"))["storage"]["database"])


def start_daemon(config: Path, log: Path, *extra: str) -> subprocess.Popen[bytes]:
    """``integration run -c config`` with the secret in its environment, output appended to ``log``."""
    env = {**os.environ, "INTEGRATION_ARS_CLIENT_SECRET": SECRET}
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "integration", "run", "-c", str(config), *extra], stdout=out, stderr=out, env=env
        )


def wait_for_start(log: Path, starts: int) -> None:
    """Wait until the daemon log shows ``starts`` daemon_started lines (the process is past its imports)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if log.exists() and log.read_text(errors="replace").count('"daemon_started"') >= starts:
            return
        time.sleep(0.02)
    raise AssertionError(f"daemon did not start: {log.read_text(errors='replace')[-2000:]}")


def synced_count(database: Path) -> int:
    """How many assets are synced (0 while the database does not exist yet)."""
    return state_count(database, "synced")


def state_count(database: Path, state: str) -> int:
    """How many assets are in ``state`` (0 while the database does not exist yet)."""
    if not database.exists():
        return 0
    with sqlite3.connect(database, timeout=5) as connection:
        try:
            return int(connection.execute("SELECT COUNT(*) FROM assets WHERE state = ?", (state,)).fetchone()[0])
        except sqlite3.OperationalError:  # schema not created yet
            return 0
