"""The token endpoint, health checks and the emulator's own ``/_emulator/*`` control routes (no auth)."""

from __future__ import annotations

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from integration.emulators.ars._errors import json_response
from integration.emulators.ars._keycloak import handle_token_request
from integration.emulators.ars._state import ArsEmulator
from integration.errors import ConfigError

__all__ = ["admin_routes"]

TOKEN_PATH = "/keycloak/realms/dassco/protocol/openid-connect/token"


class _Admin:
    """Handlers that are not ARS or file-proxy business routes."""

    def __init__(self, emulator: ArsEmulator) -> None:
        self.emulator = emulator

    async def token(self, request: Request) -> Response:
        self.emulator.core.counters.token_requests += 1
        return await handle_token_request(request, self.emulator.core.issuer)

    async def health(self, request: Request) -> Response:
        return json_response({"status": "UP"})

    async def state(self, request: Request) -> Response:
        return json_response(self.emulator.state())

    async def faults(self, request: Request) -> Response:
        try:
            changes = msgspec.json.decode(await request.body(), type=dict[str, object])
            faults = self.emulator.update_faults(changes)
        except (msgspec.DecodeError, msgspec.ValidationError, ConfigError) as exc:
            return json_response({"error": str(exc)}, 400)
        return json_response(msgspec.to_builtins(faults))

    async def tick(self, request: Request) -> Response:
        return json_response(msgspec.to_builtins(self.emulator.erda_tick()))


def admin_routes(emulator: ArsEmulator) -> list[BaseRoute]:
    """Token, health and ``/_emulator/{state,faults,tick}`` routes."""
    admin = _Admin(emulator)
    return [
        Route(TOKEN_PATH, admin.token, methods=["POST"]),
        Route("/ars/actuator/health", admin.health, methods=["GET"]),
        Route("/file_proxy/api/actuator/health", admin.health, methods=["GET"]),
        Route("/_emulator/state", admin.state, methods=["GET"]),
        Route("/_emulator/faults", admin.faults, methods=["PUT"]),
        Route("/_emulator/tick", admin.tick, methods=["POST"]),
    ]
