"""Emulators of the external services the integration talks to, for tests, demos and benchmarks.

``emulators.ars``: DaSSCo's ARS (asset service), its file proxy and the Keycloak token endpoint.
"""

from integration.emulators.ars import (
    ArsEmulator,
    EmulatorSettings,
    EmulatorStats,
    FaultSettings,
    InstitutionSettings,
    TickResult,
    create_app,
    emulate_ars,
    load_settings,
    serve_ars_emulator,
)

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
