"""Keycloak client-credentials tokens: fetched once, shared, refreshed before they expire.

Keycloak's default lifetime is 5 minutes and the SDK never refreshes (ars-api.md §2, §12.6), so the token is
renewed ``token_refresh_margin_s`` before it expires (never later than half its lifetime), and dropped when
ARS answers 401. One fetch at a time: concurrent callers wait on the same fetch instead of stampeding Keycloak.
Neither the secret nor the token is ever logged.
"""

from __future__ import annotations

import math

import httpx
import msgspec
import structlog
import trio

from integration.adapters.ars._errors import _map_httpx_errors, token_error
from integration.adapters.ars._models import TokenReply
from integration.config import ArsConfig

__all__ = ["TokenSource"]

log = structlog.get_logger()


class TokenSource:
    """Hands out a valid bearer token; raises ``ArsTransientError`` or ``ArsRejected`` (bad credentials)."""

    def __init__(self, http: httpx.AsyncClient, *, config: ArsConfig, secret: str) -> None:
        self._http = http
        self._config = config
        self._secret = secret
        self._token: str | None = None
        self._refresh_at = -math.inf
        self._lock = trio.Lock()
        self.fetches = 0

    async def get(self) -> str:
        """The cached token, or a fresh one when it is due for refresh."""
        token = self._current()
        if token is not None:
            return token
        async with self._lock:
            token = self._current()
            if token is None:
                token = await self._fetch()
        return token

    def invalidate(self, token: str) -> None:
        """Forget ``token`` (ARS refused it); a token fetched meanwhile by another task is kept."""
        if token == self._token:
            self._token = None

    def _current(self) -> str | None:
        if self._token is not None and trio.current_time() < self._refresh_at:
            return self._token
        return None

    async def _fetch(self) -> str:
        self.fetches += 1
        form = {
            "grant_type": "client_credentials",
            "client_id": self._config.client_id,
            "client_secret": self._secret,
            "scope": "openid",
        }
        timeout = self._config.request_timeout_s
        with _map_httpx_errors(operation="token"), trio.fail_after(timeout):
            response = await self._http.post(self._config.token_url, data=form, timeout=timeout)
            if not response.is_success:
                raise token_error(response)
            reply = msgspec.json.decode(response.content, type=TokenReply)
        lifetime = max(reply.expires_in, 0.0)
        self._token = reply.access_token
        self._refresh_at = trio.current_time() + max(lifetime - self._config.token_refresh_margin_s, lifetime / 2)
        log.info("ars_token_fetched", expires_in=lifetime)
        return reply.access_token
