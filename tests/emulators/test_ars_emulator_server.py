"""The ARS emulator over real HTTP on 127.0.0.1, and its command-line entry point."""

from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import httpx
import pytest
import trio

from emulators.ars_support import asset_body
from integration.emulators.ars import ArsEmulator, EmulatorSettings, FaultSettings, serve_ars_emulator

TOKEN = "/keycloak/realms/dassco/protocol/openid-connect/token"


async def test_full_cycle_over_loopback(tmp_path: Path) -> None:
    """Token, create, upload, synchronize and the ticker work through hypercorn on an ephemeral port."""
    emulator = ArsEmulator(EmulatorSettings(data_dir=str(tmp_path), sync_tick_s=0.05))
    async with trio.open_nursery() as nursery:
        port = await nursery.start(serve_ars_emulator, emulator)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            form = {
                "grant_type": "client_credentials",
                "client_id": "integration",
                "client_secret": "integration-secret",
            }
            token = (await client.post("/keycloak/realms/dassco/protocol/openid-connect/token", data=form)).json()
            client.headers["Authorization"] = f"Bearer {token['access_token']}"
            body = {
                "asset_guid": "g1",
                "asset_pid": "pid-g1",
                "status": "WORKING_COPY",
                "institution": "test-institution",
                "collection": "test-collection",
                "pipeline": "test-pipeline",
                "workstation": "test-workstation",
                "digitiser": "jdoe",
            }
            created = await client.post("/ars/api/v1/assetmetadata", params={"allocation_mb": 1}, json=body)
            assert created.json()["httpInfo"]["hostname"] == f"http://127.0.0.1:{port}"
            data = b"hello over http"
            url = "/file_proxy/api/assetfiles/test-institution/test-collection/g1/a.txt"
            put = await client.put(url, params={"crc": zlib.crc32(data), "file_size_mb": 1}, content=data)
            assert put.status_code == 200
            assert (await client.post("/file_proxy/api/shares/assets/g1/synchronize")).status_code == 204
            with trio.fail_after(5):
                while (await client.get("/ars/api/v1/assets/status/g1")).json()["status"] != "ERDA_SYNCHRONISED":
                    await trio.sleep(0.02)
        assert emulator.erda_path("g1", "a.txt").read_bytes() == data
        nursery.cancel_scope.cancel()


async def test_late_commit_over_loopback_outlives_the_client(tmp_path: Path) -> None:
    """Served, a create whose client timed out during a late commit is stored once the wait is over."""
    faults = FaultSettings(late_create_commit_next=1, late_create_commit_s=0.3)
    emulator = ArsEmulator(EmulatorSettings(data_dir=str(tmp_path), sync_tick_s=0, faults=faults))
    async with trio.open_nursery() as nursery:
        port = await nursery.start(serve_ars_emulator, emulator)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            form = {
                "grant_type": "client_credentials",
                "client_id": "integration",
                "client_secret": "integration-secret",
            }
            token = (await client.post(TOKEN, data=form)).json()["access_token"]
            client.headers["Authorization"] = f"Bearer {token}"
            with pytest.raises(httpx.ReadTimeout):
                await client.post(
                    "/ars/api/v1/assetmetadata", params={"allocation_mb": 1}, json=asset_body("g1"), timeout=0.05
                )
            assert (await client.get("/ars/api/v1/assets/status/g1")).status_code == 404
            with trio.fail_after(5):
                while (await client.get("/ars/api/v1/assets/status/g1")).status_code == 404:
                    await trio.sleep(0.02)
        assert emulator.internal_status("g1") == "METADATA_RECEIVED"
        nursery.cancel_scope.cancel()


@contextmanager
def _held_port() -> Iterator[int]:
    """A port on 127.0.0.1 (only) that a listening socket of this process holds."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        yield held.getsockname()[1]


def test_cli_port_in_use_is_one_error_line_and_exit_2() -> None:
    """``emulate-ars`` on a port in use prints exactly one error line on stderr and exits 2, no traceback."""
    with _held_port() as port:
        result = subprocess.run(
            [sys.executable, "-m", "integration", "emulate-ars", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**os.environ, "PYTHONWARNINGS": "error"},
        )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"error: cannot listen on 127.0.0.1:{port}: address already in use"]
    assert result.stdout == ""


async def test_serve_raises_plain_oserror_on_a_taken_port(tmp_path: Path) -> None:
    """serve_ars_emulator raises a plain OSError (no exception group) for a taken port and builds no emulator."""
    data_dir = tmp_path / "ars"
    with _held_port() as port:
        async with trio.open_nursery() as nursery:
            serve = partial(serve_ars_emulator, EmulatorSettings(data_dir=str(data_dir)), port=port)
            with pytest.raises(OSError) as raised:
                await nursery.start(serve)
    assert raised.value.errno == errno.EADDRINUSE
    assert not data_dir.exists()


def test_cli_prints_listening_line_and_stops_on_sigterm(tmp_path: Path) -> None:
    """``emulate_ars`` prints its URL and the accepted clients once listening, and exits 0 on SIGTERM."""
    code = "import typer; from integration.emulators.ars import emulate_ars; typer.run(emulate_ars)"
    args = [sys.executable, "-c", code, "--port", "0", "--data-dir", str(tmp_path), "--sync-tick-s", "0"]
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline().strip()
            assert line.startswith("ARS emulator listening on http://127.0.0.1:")
            port = int(line.rsplit(":", 1)[1])
            assert httpx.get(f"http://127.0.0.1:{port}/ars/actuator/health").json() == {"status": "UP"}
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=10) == 0
            assert proc.stdout.read().splitlines()[:2] == [
                "client: id=integration secret=integration-secret roles=service-user",
                "admin client: id=integration-admin secret=integration-admin-secret roles=dassco-admin",
            ]
        finally:
            proc.kill()


def test_cli_reports_a_bad_config_file(tmp_path: Path) -> None:
    """A config file with an unknown key makes the command exit 2 with the key named on stderr."""
    config = tmp_path / "bad.toml"
    config.write_text("nope = 1\n")
    code = "import typer; from integration.emulators.ars import emulate_ars; typer.run(emulate_ars)"
    result = subprocess.run(
        [sys.executable, "-c", code, "--config", str(config)], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 2
    assert "nope" in result.stderr
