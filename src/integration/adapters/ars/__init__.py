"""The ARS adapter: asset service + file proxy + Keycloak tokens (E3 API, ars-api.md), behind :class:`ArsClient`.

Everything above ``adapters/`` sees only these names and the :mod:`integration.errors` classes; httpx and
its exceptions stay inside. Tests inject ``httpx.MockTransport`` (or the emulator via ``ASGITransport``).
"""

from integration.adapters.ars._body import build_create_body
from integration.adapters.ars._client import ArsClient, open_ars_client
from integration.adapters.ars._models import ArsFile, ArsStatistics, AssetStatus, CreatedAsset

__all__ = [
    "ArsClient",
    "ArsFile",
    "ArsStatistics",
    "AssetStatus",
    "CreatedAsset",
    "build_create_body",
    "open_ars_client",
]
