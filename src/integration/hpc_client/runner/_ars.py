"""The node's own way into ARS: a client-credentials token from its secret file, and derivative uploads."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from integration.domain import ArsAccess, TicketDerivative, size_mb
from integration.errors import ConfigError, DataError, TransientError

__all__ = ["NodeArs"]


class NodeArs:
    def __init__(self, access: ArsAccess, secret: str, *, timeout_s: float = 600.0) -> None:
        self._access = access
        self._secret = secret
        self._http = httpx.Client(timeout=timeout_s)
        self._token: str | None = None
        self._expires = 0.0

    def close(self) -> None:
        self._http.close()

    def headers(self) -> dict[str, str]:
        if self._token is None or time.monotonic() > self._expires:
            self._fetch_token()
        return {"Authorization": f"Bearer {self._token}"}

    def _fetch_token(self) -> None:
        form = {"grant_type": "client_credentials", "client_id": self._access.client_id, "client_secret": self._secret}
        try:
            response = self._http.post(self._access.token_url, data=form)
        except httpx.HTTPError as exc:
            raise TransientError(f"ARS's token service {self._access.token_url} did not answer: {exc}") from exc
        if response.status_code in (400, 401, 403):
            raise ConfigError(
                f"ARS refuses this node's credentials (client {self._access.client_id!r}, HTTP {response.status_code}):"
                " check the secret file configured for this cluster"
            )
        if response.status_code >= 300:
            raise TransientError(f"ARS's token service answered HTTP {response.status_code}")
        body = response.json()
        self._token = str(body["access_token"])
        self._expires = time.monotonic() + max(10.0, float(body.get("expires_in", 300)) - 30.0)

    def upload(self, derivative: TicketDerivative, path: Path) -> None:
        """PUT ``path`` into the derivative's own share with its CRC-32 (ARS checks it)."""
        params = {"crc": derivative.crc32, "file_size_mb": size_mb(derivative.size_bytes)}
        headers = {**self.headers(), "Content-Type": "application/octet-stream"}
        try:
            with path.open("rb") as handle:
                response = self._http.put(derivative.upload_url, params=params, headers=headers, content=handle)
        except FileNotFoundError as exc:
            raise DataError(f"derivative {derivative.name} is not in this job's folder: {path}") from exc
        except httpx.HTTPError as exc:
            raise TransientError(f"upload of {derivative.name} failed: {exc}") from exc
        if response.status_code in (401, 403):
            raise ConfigError(f"ARS refuses this node's upload of {derivative.name}: HTTP {response.status_code}")
        if response.status_code == 507 or response.status_code >= 500:
            raise TransientError(f"upload of {derivative.name}: HTTP {response.status_code}: {response.text[:300]}")
        if response.status_code >= 400:
            raise DataError(f"ARS refused {derivative.name}: HTTP {response.status_code}: {response.text[:300]}")
