"""Serving the emulator over HTTP with hypercorn on trio, plus the ERDA sync ticker."""

from __future__ import annotations

import hypercorn.trio
import trio
from hypercorn.config import Config

from integration.emulators.ars._app import build_app
from integration.emulators.ars._settings import EmulatorSettings
from integration.emulators.ars._state import ArsEmulator

__all__ = ["run_erda_ticker", "serve_ars_emulator"]


async def run_erda_ticker(emulator: ArsEmulator, period_s: float) -> None:
    """Run the ERDA sync job every ``period_s`` seconds until cancelled (the file proxy's cron job)."""
    while True:
        await trio.sleep(period_s)
        emulator.erda_tick()


async def serve_ars_emulator(
    settings: EmulatorSettings | ArsEmulator,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve an emulator on ``host:port`` until cancelled; ``task_status.started(port)`` once listening.

    Pass an :class:`ArsEmulator` instead of settings to keep a handle on it (stats, ticks, faults). Port 0
    picks a free port; the port actually bound is what ``nursery.start`` returns. The ERDA job runs every
    ``settings.sync_tick_s`` seconds (0: never; use ``POST /_emulator/tick``).
    """
    emulator = settings if isinstance(settings, ArsEmulator) else ArsEmulator(settings)
    config = Config()
    config.bind = [f"{host}:{port}"]
    config.loglevel = "WARNING"
    config.accesslog = None
    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(hypercorn.trio.serve, build_app(emulator), config)
        bound_port = int(binds[0].rsplit(":", 1)[1])
        if emulator.settings.sync_tick_s > 0:
            nursery.start_soon(run_erda_ticker, emulator, emulator.settings.sync_tick_s)
        task_status.started(bound_port)
