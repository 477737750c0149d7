"""The ARS adapter: asset service + file proxy + Keycloak tokens (E3 API, ars-api.md), behind :class:`ArsClient`.

Everything above ``adapters/`` sees only these names and the :mod:`integration.errors` classes; httpx and
its exceptions stay inside. Tests inject ``httpx.MockTransport`` (or the emulator via ``ASGITransport``).
What each ARS answer means (site, group or asset) is one table; :func:`describe_classification` prints it.
"""

from integration.adapters.ars._body import build_create_body, file_format_names
from integration.adapters.ars._classify import describe as describe_classification
from integration.adapters.ars._client import ArsClient, open_ars_client
from integration.adapters.ars._models import ArsAsset, ArsFile, ArsStatistics, AssetStatus, CreatedAsset, ShareInfo
from integration.adapters.ars._token import SecretProvider

__all__ = [
    "ArsAsset",
    "ArsClient",
    "ArsFile",
    "ArsStatistics",
    "AssetStatus",
    "CreatedAsset",
    "SecretProvider",
    "ShareInfo",
    "build_create_body",
    "describe_classification",
    "file_format_names",
    "open_ars_client",
]
