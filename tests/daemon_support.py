"""Helpers for tests that run the daemon against the ARS emulator over real HTTP on 127.0.0.1."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import tomli_w
import trio

from integration.actors import Daemon, StartupCheck, run_daemon
from integration.config import Config, parse_config
from integration.demo import (
    DEMO_WORKSTATIONS,
    SpecimenSpec,
    demo_config,
    demo_emulator_settings,
    make_guid,
    write_plain_asset,
)
from integration.emulators.ars import ArsEmulator, serve_ars_emulator
from integration.state_machines import AssetState

SECRET = "test-secret"
WORKSTATIONS = DEMO_WORKSTATIONS


class ArsServer(msgspec.Struct):
    """A running emulator and where it listens."""

    emulator: ArsEmulator
    port: int
    data_dir: Path

    def erda_bytes(self, guid: str, name: str) -> bytes:
        return (self.data_dir / "erda" / "test-institution" / "test-collection" / guid / name).read_bytes()


async def serve_ars(nursery: trio.Nursery, tmp_path: Path, **settings_overrides: Any) -> ArsServer:
    """Serve the ARS emulator on 127.0.0.1 (free port), ERDA tick every 0.1 s."""
    settings = demo_emulator_settings(tmp_path / "ars", secret=SECRET, sync_tick_s=0.1)
    if settings_overrides:
        settings = msgspec.structs.replace(settings, **settings_overrides)
    emulator = ArsEmulator(settings)
    port: int = await nursery.start(lambda task_status: serve_ars_emulator(emulator, task_status=task_status))
    return ArsServer(emulator=emulator, port=port, data_dir=tmp_path / "ars")


#: What tests change in the demo's configuration: faster everything, a plain-text secret, small limits.
_TEST_OVERRIDES: dict[str, dict[str, Any]] = {
    "ndrive": {"settle_s": 0.3, "scan_interval_s": 0.1},
    "ars": {
        "client_secret": SECRET,
        "allow_plaintext_secret": True,
        "request_timeout_s": 5.0,
        "sync_poll_initial_s": 0.1,
        "sync_poll_max_s": 0.5,
    },
    "lanes": {"probe_initial_s": 0.2},
    "retry": {"attempts": 3, "initial_s": 0.05, "max_s": 0.2, "jitter_s": 0.05},
    "concurrency": {"assets": 8, "ars_connections": 8},
    "pipelines": {"test-pipeline": {"jobs": [["asset_loader"]]}},
    "executor": {"kind": "none"},  # the ingest tests end at synced; the processing tests set "local"
}


def config_dict(root: Path, port: int, **sections: dict[str, Any]) -> dict[str, Any]:
    """The demo's configuration made fast for tests; ``sections`` override keys per section."""
    data: dict[str, Any] = demo_config(root, ars_port=port)
    del data["ars"]["client_secret_file"]
    for overrides in (_TEST_OVERRIDES, sections):
        for name, values in overrides.items():
            data[name] = values if name == "pipelines" else {**data.get(name, {}), **values}
    return data


def make_config(root: Path, port: int, **sections: dict[str, Any]) -> Config:
    return parse_config(tomli_w.dumps(config_dict(root, port, **sections)))


async def start_daemon(
    nursery: trio.Nursery,
    config: Config,
    *,
    startup_check: StartupCheck = "require",
    secret: str | Callable[[], str] = SECRET,
) -> Daemon:
    """Start the daemon in ``nursery`` (with the ARS start-up check unless told otherwise)."""
    daemon: Daemon = await nursery.start(
        lambda task_status: run_daemon(config, secret=secret, startup_check=startup_check, task_status=task_status)
    )
    return daemon


async def wait_until(predicate: Callable[[], Awaitable[bool]], *, timeout: float = 30.0, what: str = "") -> None:
    """Poll ``predicate`` every 50 ms until it is true (fails after ``timeout`` s, naming ``what``)."""
    with trio.move_on_after(timeout):
        while not await predicate():
            await trio.sleep(0.05)
        return
    raise AssertionError(f"timed out waiting for {what or predicate}")


def write_session(
    root: Path, workstation: str, session: str, count: int, *, seed: int, size: int = 20_000
) -> list[str]:
    """Write ``count`` small valid assets (TIFF + JSON) into a session folder; returns their GUIDs."""
    folder = root / "ndrive" / workstation / session
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    spec = SpecimenSpec(workstation=workstation)
    guids = []
    start = datetime(2025, 5, 1, 10, 0, tzinfo=UTC) + timedelta(hours=seed)
    for i in range(count):
        taken = start + timedelta(seconds=i)
        guid = make_guid(rng, taken)
        asset = write_plain_asset(folder, guid=guid, spec=spec, image_bytes=size, taken=taken, rng=rng)
        guids.append(asset.guid)
    return guids


async def wait_for_states(daemon: Daemon, expected: dict[str, int], *, timeout: float = 60.0) -> dict[str, int]:
    """Wait until the per-state counts include ``expected`` (fails with the last counts on timeout)."""
    counts: dict[str, int] = {}
    with trio.move_on_after(timeout):
        while True:
            counts = await daemon.store.assets.counts_by_state()
            if all(counts.get(state, 0) >= n for state, n in expected.items()):
                return counts
            await trio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {expected}; counts are {counts}")


__all__ = [
    "SECRET",
    "WORKSTATIONS",
    "ArsServer",
    "AssetState",
    "config_dict",
    "make_config",
    "serve_ars",
    "start_daemon",
    "wait_for_states",
    "wait_until",
    "write_session",
]
