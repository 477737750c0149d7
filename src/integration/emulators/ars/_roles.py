"""Endpoint roles: the realm roles ARS and the file proxy check with Jersey's ``@RolesAllowed`` (spec §2, §3, §4).

Each guarded route names the set of roles it admits (the roles column of the spec: A = dassco-admin,
D = dassco-developer, U = dassco-user, S = service-user). A token that has none of them gets a bare 403, the
answer of Jersey's ``RolesAllowedDynamicFeature``. Data-level role restrictions (``READ_X`` / ``WRITE_X``) are
not emulated.
"""

from __future__ import annotations

from collections.abc import Iterable

from integration.emulators.ars._errors import ApiError

__all__ = [
    "ADMIN",
    "ADMIN_DEV_SERVICE",
    "ADMIN_DEV_SERVICE_USER",
    "ADMIN_ONLY",
    "ADMIN_SERVICE",
    "DEVELOPER",
    "SERVICE",
    "USER",
    "require_role",
]

ADMIN = "dassco-admin"
DEVELOPER = "dassco-developer"
USER = "dassco-user"
SERVICE = "service-user"
"""The role a pipeline's service account needs."""

ADMIN_ONLY = frozenset({ADMIN})
"""A: deletes of assets and of files in a share (FP ≥ 2.7.4)."""
ADMIN_SERVICE = frozenset({ADMIN, SERVICE})
"""A,S: changeAllocation, ``GET /shares``."""
ADMIN_DEV_SERVICE = frozenset({ADMIN, DEVELOPER, SERVICE})
"""A,D,S: create and update assets, shares, uploads, reference data reads."""
ADMIN_DEV_SERVICE_USER = frozenset({ADMIN, DEVELOPER, SERVICE, USER})
"""A,D,S,U: reading an asset, its status, its files, collections and lists."""


def require_role(granted: Iterable[str], allowed: frozenset[str]) -> None:
    """Raise the bare 403 of ``@RolesAllowed`` unless ``granted`` holds one of the ``allowed`` roles."""
    if allowed.isdisjoint(granted):
        raise ApiError(403, "FORBIDDEN", None, bare=True)
