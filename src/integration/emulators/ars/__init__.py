"""The ARS emulator: DaSSCo's asset service (E3 API), its file proxy and the Keycloak token endpoint.

It follows ``specs/ars-api.md``: the same paths, status codes, JSON shapes and error texts, the endpoint roles
(a pipeline client with ``client_roles``, default ``service-user``, and an admin client with ``dassco-admin``),
the asynchronous ERDA sync, and fault injection (latency, 5xx, hangs, outages, disk full, failed syncs, stuck
assets, lost replies, late commits, corrupted uploads) switchable at run time through ``/_emulator/*``.

Use it in-process::

    app, emulator = create_app(EmulatorSettings(data_dir=str(tmp_path)))
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://ars")

or over loopback with ``port = await nursery.start(serve_ars_emulator, settings)``, or from the command line
with ``integration emulate-ars`` (:func:`emulate_ars`).
"""

from integration.emulators.ars._app import create_app
from integration.emulators.ars._cli import emulate_ars
from integration.emulators.ars._erda import TickResult
from integration.emulators.ars._model import EmulatorStats
from integration.emulators.ars._server import serve_ars_emulator
from integration.emulators.ars._settings import EmulatorSettings, FaultSettings, InstitutionSettings, load_settings
from integration.emulators.ars._state import ArsEmulator

__all__ = [
    "ArsEmulator",
    "EmulatorSettings",
    "EmulatorStats",
    "FaultSettings",
    "InstitutionSettings",
    "TickResult",
    "create_app",
    "emulate_ars",
    "load_settings",
    "serve_ars_emulator",
]
