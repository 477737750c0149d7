"""Serving the emulator over HTTP with hypercorn on trio, plus the ERDA sync ticker."""

from __future__ import annotations

import socket

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


def _listen(host: str, port: int) -> socket.socket:
    """A socket listening on ``host:port``; raises OSError (address in use, unknown host, ...) if there is none.

    Binding here, before hypercorn starts, makes that error a plain OSError instead of one buried in nested
    exception groups, and no emulator (no temporary data folder) is built for a port that cannot be had.
    """
    listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen()
    except BaseException:
        listener.close()
        raise
    return listener


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
    ``settings.sync_tick_s`` seconds (0: never; use ``POST /_emulator/tick``). Raises OSError before starting
    if ``host:port`` cannot be listened on (e.g. the port is in use).
    """
    listener = _listen(host, port)
    try:
        emulator = settings if isinstance(settings, ArsEmulator) else ArsEmulator(settings)
    except BaseException:
        listener.close()
        raise
    config = Config()
    config.bind = [f"fd://{listener.detach()}"]  # hypercorn adopts (and closes) the listening socket
    config.loglevel = "WARNING"
    config.accesslog = None
    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(hypercorn.trio.serve, build_app(emulator), config)
        bound_port = int(binds[0].rsplit(":", 1)[1])
        if emulator.settings.sync_tick_s > 0:
            nursery.start_soon(run_erda_ticker, emulator, emulator.settings.sync_tick_s)
        task_status.started(bound_port)
