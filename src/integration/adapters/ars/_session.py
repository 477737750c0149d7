"""One authenticated exchange with ARS, and the retry loop around whole operations.

Layering (like httpx's client / transport split): :class:`Session` knows tokens, 401 handling, the capacity
limiter, named timeouts, back-off and counters; :class:`~integration.adapters.ars.ArsClient` knows the ARS
endpoints; :mod:`._classify` knows what their refusals mean.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import msgspec
import stamina
import structlog
import trio

from integration.adapters.ars._classify import Outcome
from integration.adapters.ars._errors import _map_httpx_errors, error_for_response, unsuccessful, verdict_for
from integration.adapters.ars._token import SecretProvider, TokenSource
from integration.config import ArsConfig, RetryConfig
from integration.errors import ArsTransientError, ArsUnavailable, IntegrationError

__all__ = ["ContentFactory", "Outgoing", "Session"]

log = structlog.get_logger()

T = TypeVar("T")
#: Makes a fresh request body for each send (a stream can be sent only once; a 401 resends it). It becomes
#: ``request.stream`` as it is, so httpx does not wrap it in an async generator that a timeout would abandon.
ContentFactory = Callable[[], httpx.AsyncByteStream]


@dataclass(frozen=True, kw_only=True)
class Outgoing:
    """A request to send: where, what, and what names it in errors and logs.

    ``operation`` is the client's name for the request (the classification table matches on it); ``target``
    the ``institution/collection`` it writes to and ``requested_mb`` the allocation it asks, when it does.
    """

    method: str
    url: str
    operation: str
    guid: str | None = None
    target: str | None = None
    requested_mb: int | None = None
    params: Mapping[str, str | int] | None = None
    json: Any = None
    content: ContentFactory | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout_s: float | None = None  # None: ars.request_timeout_s


class Session:
    """Sends requests with a bearer token under the limiter and the named timeout; retries operations."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        config: ArsConfig,
        secret: str | SecretProvider,
        retry: RetryConfig,
        limiter: trio.CapacityLimiter | None,
    ) -> None:
        self._http = http
        self._config = config
        self._retry = retry
        self._limiter = limiter
        provider: SecretProvider = (lambda: secret) if isinstance(secret, str) else secret
        rereadable = not isinstance(secret, str) and config.secret_rereadable
        self.tokens = TokenSource(http, config=config, secret=provider, rereadable=rereadable)
        self.requests = 0
        self.retries = 0
        self.failures = 0

    async def call(self, operation: str, guid: str | None, attempt: Callable[[int], Awaitable[T]]) -> T:
        """Run ``attempt(number)`` until it succeeds, retrying ``ArsTransientError`` with back-off.

        Raises ``ArsUnavailable`` (chaining the last transient error, its reason naming ARS or Keycloak) once
        ``retry.attempts`` are spent; any other error (a site, group or asset refusal) is raised at once.
        """
        try:
            return await self._retrying(operation, guid, attempt)
        except IntegrationError:
            self.failures += 1
            raise

    async def fetch(self, outgoing: Outgoing, into: type[T]) -> T:
        """Send ``outgoing`` (retrying transient failures) and decode the checked answer into ``into``."""
        return await self.call(outgoing.operation, outgoing.guid, lambda _: self._fetch_once(outgoing, into))

    async def fetch_optional(self, outgoing: Outgoing, into: type[T]) -> T | None:
        """Like :meth:`fetch`, but ``None`` when ARS says it is not there: a 204, or an answer classified ABSENT."""

        async def attempt(_: int) -> T | None:
            response = await self.send(outgoing)
            if response.status_code == 204 or self.absent(response, outgoing):
                return None
            return self.decode(response, into, outgoing)

        return await self.call(outgoing.operation, outgoing.guid, attempt)

    async def perform(self, outgoing: Outgoing) -> bool:
        """Send ``outgoing`` (retrying transient failures): True when done, False when classified ABSENT."""

        async def attempt(_: int) -> bool:
            response = await self.send(outgoing)
            if self.absent(response, outgoing):
                return False
            self.checked(response, outgoing)
            return True

        return await self.call(outgoing.operation, outgoing.guid, attempt)

    async def send(self, outgoing: Outgoing) -> httpx.Response:
        """One exchange; a 401 drops the token and resends once with a new one. The answer is not checked."""
        token = await self.tokens.get()
        response = await self._exchange(outgoing, token)
        if response.status_code == 401:
            self.tokens.invalidate(token)
            response = await self._exchange(outgoing, await self.tokens.get())
        return response

    def checked(self, response: httpx.Response, outgoing: Outgoing) -> httpx.Response:
        """``response`` if it is a success, else raise the error it means."""
        if unsuccessful(response):
            raise error_for_response(
                response,
                operation=outgoing.operation,
                config=self._config,
                guid=outgoing.guid,
                target=outgoing.target,
                requested_mb=outgoing.requested_mb,
            )
        return response

    def absent(self, response: httpx.Response, outgoing: Outgoing) -> bool:
        """True when the answer says that what was asked about is not there (e.g. status 404 of an unknown GUID)."""
        if not unsuccessful(response):
            return False
        verdict = verdict_for(response, operation=outgoing.operation, config=self._config)
        return verdict.outcome is Outcome.ABSENT

    def decode(self, response: httpx.Response, into: type[T], outgoing: Outgoing) -> T:
        """The checked answer decoded into ``into``; unreadable JSON is transient."""
        self.checked(response, outgoing)
        with _map_httpx_errors(operation=outgoing.operation, guid=outgoing.guid):
            return msgspec.json.decode(response.content, type=into)

    async def _fetch_once(self, outgoing: Outgoing, into: type[T]) -> T:
        return self.decode(await self.send(outgoing), into, outgoing)

    async def _exchange(self, outgoing: Outgoing, token: str) -> httpx.Response:
        timeout = outgoing.timeout_s or self._config.request_timeout_s
        with _map_httpx_errors(operation=outgoing.operation, guid=outgoing.guid):
            request = self._build(outgoing, token, timeout)
        limit = self._limiter if self._limiter is not None else contextlib.nullcontext()
        async with limit:
            self.requests += 1
            with _map_httpx_errors(operation=outgoing.operation, guid=outgoing.guid), trio.fail_after(timeout):
                return await self._http.send(request)

    def _build(self, outgoing: Outgoing, token: str, timeout: float) -> httpx.Request:
        request = self._http.build_request(
            outgoing.method,
            outgoing.url,
            params=outgoing.params,
            json=outgoing.json,
            headers={**outgoing.headers, "Authorization": f"Bearer {token}"},
            timeout=timeout,
        )
        if outgoing.content is None:
            return request
        # A streamed body, used as it is; the caller put Content-Length in outgoing.headers.
        return httpx.Request(
            request.method,
            request.url,
            headers=request.headers,
            stream=outgoing.content(),
            extensions=request.extensions,
        )

    async def _retrying(self, operation: str, guid: str | None, attempt: Callable[[int], Awaitable[T]]) -> T:
        policy = self._retry
        try:
            async for trial in stamina.retry_context(
                on=ArsTransientError,
                attempts=policy.attempts,
                timeout=None,  # the budget is attempts x back-off; stamina's timeout uses the wall clock
                wait_initial=policy.initial_s,
                wait_max=policy.max_s,
                wait_jitter=policy.jitter_s,
            ):
                with trial:
                    try:
                        return await attempt(trial.num)
                    except ArsTransientError as exc:
                        if trial.num < policy.attempts:
                            self.retries += 1
                            log.warning(
                                "ars_request_retry", operation=operation, guid=guid, attempt=trial.num, error=str(exc)
                            )
                        raise
        except ArsTransientError as exc:
            log.warning("ars_unavailable", operation=operation, guid=guid, attempts=policy.attempts, error=str(exc))
            raise ArsUnavailable(self._unreachable(exc, policy.attempts), guid=guid) from exc
        raise AssertionError("stamina ended without a result or an error")  # pragma: no cover

    def _unreachable(self, last: ArsTransientError, tries: int) -> str:
        if self.tokens.raised(last):
            return (
                f"Keycloak is unreachable ({last}) after {tries} tries: check that Keycloak is up and "
                f"ars.token_url ({self._config.token_url})"
            )
        return (
            f"ARS is unreachable ({last}) after {tries} tries: check that ARS is up and ars.base_url "
            f"({self._config.base_url})"
        )
