"""The Starlette app of the emulator: every route behind the fault gate."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware

from integration.emulators.ars._faults import FaultGate
from integration.emulators.ars._routes_admin import admin_routes
from integration.emulators.ars._routes_ars import ars_routes
from integration.emulators.ars._routes_fileproxy import fileproxy_routes
from integration.emulators.ars._settings import EmulatorSettings
from integration.emulators.ars._state import ArsEmulator

__all__ = ["build_app", "create_app"]


def build_app(emulator: ArsEmulator) -> Starlette:
    """The ASGI app serving ``emulator``."""
    core = emulator.core
    routes = [*admin_routes(emulator), *ars_routes(core), *fileproxy_routes(core)]
    return Starlette(routes=routes, middleware=[Middleware(FaultGate, core=core)])


def create_app(settings: EmulatorSettings | None = None) -> tuple[Starlette, ArsEmulator]:
    """A new emulator and its ASGI app, for in-process use (``httpx.ASGITransport(app=app)``)."""
    emulator = ArsEmulator(settings)
    return build_app(emulator), emulator
