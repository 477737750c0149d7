"""Route plumbing shared by the ARS and file-proxy routes: authentication, roles and error rendering."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from integration.emulators.ars._errors import ApiError, Service, render_error
from integration.emulators.ars._keycloak import authenticate
from integration.emulators.ars._model import Core
from integration.emulators.ars._roles import require_role

__all__ = ["Endpoint", "Handler", "guarded", "host_of"]

Handler = Callable[[Request, str], Awaitable[Response]]
"""A route handler: the request and the caller's username."""
Endpoint = Callable[[Request], Awaitable[Response]]

ANONYMOUS = "anonymous"


def host_of(request: Request) -> str:
    """The base URL the request came in on, without a trailing slash (the default ``SHARE_NODE_HOST``)."""
    return str(request.base_url).rstrip("/")


def guarded(
    core: Core, service: Service, handler: Handler, *, auth: bool = True, roles: frozenset[str] | None = None
) -> Endpoint:
    """``handler`` behind the bearer-token check of ``service``, with :class:`ApiError` rendered its way.

    ``roles`` is the ``@RolesAllowed`` set of the endpoint (None: any valid token will do); ``auth=False``
    serves anonymous callers too.
    """

    async def endpoint(request: Request) -> Response:
        try:
            user = ANONYMOUS
            if auth:
                claims = authenticate(request, core.issuer, service)
                if roles is not None:
                    require_role(claims.realm_access.roles, roles)
                user = claims.preferred_username
            return await handler(request, user)
        except ApiError as error:
            return render_error(error, service, request.url.path)

    return endpoint
