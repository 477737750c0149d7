"""The fault gate: an ASGI middleware that injects latency, errors, hangs and outages before routing.

``/_emulator/*`` is never affected, so a test can always switch faults off again.
"""

from __future__ import annotations

import trio
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from integration.emulators.ars._model import Core

__all__ = ["FaultGate"]

_API_PREFIXES = ("/ars/api/", "/file_proxy/api/")


class FaultGate:
    """Applies :class:`FaultSettings` (read afresh on each request) and counts requests."""

    def __init__(self, app: ASGIApp, core: Core) -> None:
        self.app = app
        self.core = core

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer 503 / 504 per the faults, or sleep the latency and pass the request on."""
        path: str = scope.get("path", "")
        if scope["type"] != "http" or path.startswith("/_emulator/"):
            await self.app(scope, receive, send)
            return
        core = self.core
        core.counters.requests_total += 1
        faults = core.faults
        if faults.down:
            await PlainTextResponse("Service Unavailable", 503)(scope, receive, send)
            return
        if faults.latency_ms > 0:
            await trio.sleep(faults.latency_ms / 1000)
        if path.startswith(_API_PREFIXES):
            if faults.error_rate > 0 and core.rng.random() < faults.error_rate:
                await PlainTextResponse("Service Unavailable", 503)(scope, receive, send)
                return
            if faults.timeout_rate > 0 and core.rng.random() < faults.timeout_rate:
                await trio.sleep(faults.timeout_hang_s)
                await PlainTextResponse("Gateway Timeout", 504)(scope, receive, send)
                return
        await self.app(scope, receive, send)
