"""Serving the API with hypercorn on trio inside the daemon's nursery."""

from __future__ import annotations

import socket

import hypercorn.trio
import trio
from hypercorn.config import Config as HypercornConfig
from starlette.applications import Starlette

__all__ = ["listen", "serve_api"]


def listen(host: str, port: int) -> socket.socket:
    """A socket listening on ``host:port``; raises OSError (address in use, ...) before anything is started."""
    listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(512)
    except BaseException:
        listener.close()
        raise
    return listener


async def serve_api(
    app: Starlette, listener: socket.socket, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
) -> None:
    """Serve ``app`` on ``listener`` until cancelled; ``task_status.started(port)``."""
    config = HypercornConfig()
    config.bind = [f"fd://{listener.detach()}"]
    config.loglevel = "WARNING"
    config.accesslog = None
    config.keep_alive_timeout = 75.0
    async with trio.open_nursery() as nursery:
        binds: list[str] = await nursery.start(hypercorn.trio.serve, app, config)
        task_status.started(int(binds[0].rsplit(":", 1)[1]))
