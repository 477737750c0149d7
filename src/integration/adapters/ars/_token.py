"""Keycloak client-credentials tokens: fetched once, shared, refreshed before they expire.

Keycloak's default lifetime is 5 minutes and the SDK never refreshes (ars-api.md §2, §12.6), so the token is
renewed ``token_refresh_margin_s`` before it expires (never later than half its lifetime), and dropped when
ARS answers 401. One fetch at a time: concurrent callers wait on the same fetch instead of stampeding Keycloak.
The secret is asked of its provider on every fetch (the daemon's provider re-reads ``ars.client_secret_file``),
so a corrected secret file takes effect without a restart. Neither the secret nor the token is ever logged.
"""

from __future__ import annotations

import base64
import binascii
import math
import weakref
from collections.abc import Callable

import httpx
import msgspec
import structlog
import trio

from integration.adapters.ars._errors import _map_httpx_errors, secret_error, token_error
from integration.adapters.ars._models import TokenClaims, TokenReply
from integration.config import ArsConfig
from integration.errors import ConfigError, IntegrationError

__all__ = ["SecretProvider", "TokenSource", "claimed_username"]

log = structlog.get_logger()

#: Returns the client secret; may raise ``OSError`` or ``ConfigError`` when it cannot be read.
SecretProvider = Callable[[], str]


class TokenSource:
    """Hands out a valid bearer token.

    Raises ``ArsCredentialsRefused`` (Keycloak refused the client, or the secret cannot be read),
    ``ArsRouteNotFound`` (``ars.token_url`` answers 404) or ``ArsTransientError`` (Keycloak down or slow).
    ``rereadable`` says whether fixing the secret's source takes effect without a restart (it shapes the
    reason given to humans).
    """

    def __init__(self, http: httpx.AsyncClient, *, config: ArsConfig, secret: SecretProvider, rereadable: bool) -> None:
        self._http = http
        self._config = config
        self._secret = secret
        self._rereadable = rereadable
        self._token: str | None = None
        self._refresh_at = -math.inf
        self._lock = trio.Lock()
        self._raised: weakref.WeakSet[BaseException] = weakref.WeakSet()
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

    async def fresh(self) -> str:
        """A new token whatever the cache holds (re-reading the secret): proves the credentials work now."""
        async with self._lock:
            return await self._fetch()

    def invalidate(self, token: str) -> None:
        """Forget ``token`` (ARS refused it); a token fetched meanwhile by another task is kept."""
        if token == self._token:
            self._token = None

    def raised(self, exc: BaseException) -> bool:
        """True when ``exc`` came from asking Keycloak (not from ARS): names the service in reasons."""
        return exc in self._raised

    def _current(self) -> str | None:
        if self._token is not None and trio.current_time() < self._refresh_at:
            return self._token
        return None

    async def _fetch(self) -> str:
        try:
            return await self._fetch_once()
        except IntegrationError as exc:
            self._raised.add(exc)
            raise

    async def _fetch_once(self) -> str:
        self.fetches += 1
        try:
            secret = await trio.to_thread.run_sync(self._secret)
        except (OSError, ConfigError) as exc:
            raise secret_error(exc, config=self._config, secret_rereadable=self._rereadable) from exc
        form = {
            "grant_type": "client_credentials",
            "client_id": self._config.client_id,
            "client_secret": secret,
            "scope": "openid",
        }
        timeout = self._config.request_timeout_s
        with _map_httpx_errors(operation="token"), trio.fail_after(timeout):
            response = await self._http.post(self._config.token_url, data=form, timeout=timeout)
            if not response.is_success:
                raise token_error(response, config=self._config, secret_rereadable=self._rereadable)
            reply = msgspec.json.decode(response.content, type=TokenReply)
        lifetime = max(reply.expires_in, 0.0)
        self._token = reply.access_token
        self._refresh_at = trio.current_time() + max(lifetime - self._config.token_refresh_margin_s, lifetime / 2)
        log.info("ars_token_fetched", expires_in=lifetime)
        return reply.access_token


def claimed_username(token: str) -> str | None:
    """The ``preferred_username`` claim of a JWT, read without verifying it; ``None`` for an opaque token."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        return msgspec.json.decode(payload, type=TokenClaims).preferred_username or None
    except (binascii.Error, ValueError, RecursionError):  # ValueError covers msgspec and UTF-8 decode errors
        return None
