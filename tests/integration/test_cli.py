"""The `integration` command as a user meets it: a daemon that cannot work refuses to start with one plain line
(wrong secret, second daemon, ARS unreachable unless --offline-ok), and `status` tells the truth in 80 columns."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from daemon_support import write_session
from process_support import (
    SECRET,
    start_daemon,
    start_emulator,
    stop_emulator,
    synced_count,
    wait_for_start,
    write_daemon_config,
)

pytestmark = pytest.mark.slow


def integration(*args: str, secret: str = SECRET, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {"INTEGRATION_ARS_CLIENT_SECRET": secret, "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-m", "integration", *args], capture_output=True, text=True, timeout=timeout, env=env
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def emulator(tmp_path: Path) -> object:
    process, port = start_emulator(tmp_path / "ars")
    yield port
    stop_emulator(process)


def test_run_refuses_a_wrong_secret_with_one_plain_line(tmp_path: Path, emulator: int) -> None:
    """A secret Keycloak refuses: exit 2, one line naming ars.client_id and that a restart is needed (env var)."""
    config = write_daemon_config(tmp_path, emulator)
    done = integration("run", "-c", str(config), secret="wrong")
    assert done.returncode == 2, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, done.stderr
    assert "Keycloak refused the client credentials" in lines[0]
    assert "restart the daemon" in lines[0]
    assert "Traceback" not in done.stderr


def test_run_refuses_an_unusable_token_file_and_a_taken_api_port(tmp_path: Path, emulator: int) -> None:
    """The API's token file unreadable, or its port taken: exit 2 with one line saying which and what to do."""
    config = write_daemon_config(tmp_path, emulator, api={"token_files": {"cluster1": str(tmp_path / "missing.token")}})
    done = integration("run", "-c", str(config))
    assert done.returncode == 2, done.stderr
    assert "api.token_files.cluster1: cannot read" in done.stderr
    assert "Traceback" not in done.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = write_daemon_config(tmp_path, emulator, api={"port": port})
        done = integration("run", "-c", str(config))
    assert done.returncode == 2, done.stderr
    assert f"the API cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr


def test_run_refuses_unreachable_ars_unless_offline_ok(tmp_path: Path) -> None:
    """ARS unreachable at start-up: exit 2 suggesting --offline-ok; with it, the daemon starts with the lane paused."""
    config = write_daemon_config(tmp_path, free_port())
    done = integration("run", "-c", str(config))
    assert done.returncode == 2
    assert "--offline-ok" in done.stderr
    log = tmp_path / "daemon.log"
    daemon = start_daemon(config, log, "--offline-ok")
    try:
        wait_for_start(log, 1)
        status = integration("status", "-c", str(config))
        assert status.returncode == 0, status.stderr
        assert "PAUSED" in status.stdout
        assert "unreachable" in status.stdout
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=10) == 0


def test_a_second_daemon_on_the_same_database_exits_2(tmp_path: Path, emulator: int) -> None:
    """While one daemon runs, a second `integration run` on its database says who holds it and exits 2."""
    config = write_daemon_config(tmp_path, emulator)
    log = tmp_path / "daemon.log"
    first = start_daemon(config, log)
    try:
        wait_for_start(log, 1)
        second = integration("run", "-c", str(config))
        assert second.returncode == 2
        assert f"another daemon (PID {first.pid}) holds" in second.stderr
        status = integration("status", "-c", str(config))
        assert status.returncode == 0
        assert f"Daemon: running (PID {first.pid})" in status.stdout
    finally:
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=10) == 0


def test_status_of_one_asset_fits_80_columns_and_tells_its_story(tmp_path: Path, emulator: int) -> None:
    """`status GUID` shows state, files with both paths, what happens next and the timeline, within 80 columns."""
    [guid] = write_session(tmp_path, "test-workstation", "s1", 1, seed=51)
    config = write_daemon_config(tmp_path, emulator)
    log = tmp_path / "daemon.log"
    daemon = start_daemon(config, log)
    try:
        deadline = time.monotonic() + 60
        while synced_count(tmp_path / "track.sqlite3") < 1 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=10) == 0
    done = integration("status", "-c", str(config), guid)
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert all(len(line) <= 80 for line in text.splitlines()), max(text.splitlines(), key=len)
    for words in (
        "state:      synced",
        "local:",
        "N-Drive:",
        "imported_s1",
        "next:",
        "confirm_sync",
        "in ARS:     yes",
    ):
        assert words in text, words
    prefix = integration("status", "-c", str(config), guid[:20])
    assert prefix.returncode == 1
    assert guid in prefix.stderr
    overview = integration("status", "-c", str(config))
    assert all(len(line) <= 80 for line in overview.stdout.splitlines())
    assert "synced" in overview.stdout
