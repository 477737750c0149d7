"""The runner's calls to the daemon: fetch the ticket, post the callbacks (retried; a callback that never
arrives is settled by the daemon's watchdog, so giving up is safe)."""

from __future__ import annotations

import time
from typing import Any

import httpx
import msgspec

from integration.domain import CallbackAnswer, JobTicket
from integration.errors import ConfigError, TransientError

__all__ = ["DaemonLink", "TicketGone"]


class TicketGone(Exception):
    """The daemon no longer wants this attempt (another attempt took over, or the job is settled)."""


class DaemonLink:
    def __init__(self, server: str, token: str, *, attempts: int = 5, backoff_s: float = 0.5, timeout_s: float = 30.0):
        self._base = server.rstrip("/") + "/api/v1/jobs"
        self._http = httpx.Client(timeout=timeout_s, headers={"Authorization": f"Bearer {token}"})
        self._attempts = attempts
        self._backoff_s = backoff_s

    def close(self) -> None:
        self._http.close()

    def ticket(self, key: str) -> JobTicket:
        response = self._call("GET", f"{self._base}/{key}", None)
        if response.status_code in (404, 409, 410):
            raise TicketGone(f"the daemon does not hand out {key}: {response.text[:300]}")
        return msgspec.json.decode(response.content, type=JobTicket)

    def report(self, key: str, what: str, body: dict[str, Any]) -> CallbackAnswer:
        response = self._call("POST", f"{self._base}/{key}/{what}", msgspec.json.encode(body))
        if response.status_code in (404, 409, 410):
            raise TicketGone(f"the daemon refused '{what}' for {key}: {response.text[:300]}")
        if response.status_code == 422:
            raise ConfigError(f"the daemon refused our '{what}' body for {key}: {response.text[:500]}")
        return msgspec.json.decode(response.content, type=CallbackAnswer)

    def _call(self, method: str, url: str, content: bytes | None) -> httpx.Response:
        last = ""
        for attempt in range(1, self._attempts + 1):
            if attempt > 1:
                time.sleep(self._backoff_s * 2 ** (attempt - 2))
            try:
                response = self._http.request(
                    method, url, content=content, headers={"Content-Type": "application/json"} if content else None
                )
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
                continue
            if response.status_code in (401, 403):
                raise ConfigError(f"the daemon refuses this node's callback token (HTTP {response.status_code})")
            if response.status_code >= 500 or response.status_code == 429:
                last = f"HTTP {response.status_code}"
                continue
            if response.status_code >= 400 and response.status_code not in (404, 409, 410, 422):
                raise ConfigError(f"{method} {url}: HTTP {response.status_code}: {response.text[:300]}")
            return response
        raise TransientError(f"{method} {url}: the daemon did not answer after {self._attempts} attempts ({last})")
