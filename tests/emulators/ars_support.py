"""Helpers for the ARS emulator tests: an in-process emulator with an authenticated httpx client."""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from starlette.applications import Starlette

from integration.emulators.ars import ArsEmulator, EmulatorSettings, create_app

FP = "/file_proxy/api"
ARS = "/ars/api/v1"


class Ars:
    """An in-process emulator with a client that carries a valid token."""

    def __init__(self, app: Starlette, emulator: ArsEmulator, client: httpx.AsyncClient) -> None:
        self.app = app
        self.emulator = emulator
        self.client = client

    def anonymous(self) -> httpx.AsyncClient:
        """A second client on the same app, without a token (use it in ``async with``)."""
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://ars")

    def admin(self) -> httpx.AsyncClient:
        """A second client on the same app with a ``dassco-admin`` token (use it in ``async with``)."""
        token = self.emulator.issue_token(client_id=self.emulator.settings.admin_client_id)
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url="http://ars",
            headers={"Authorization": f"Bearer {token}"},
        )

    async def create(self, guid: str, allocation_mb: int = 10, **fields: Any) -> httpx.Response:
        """POST a valid asset (fields override the defaults)."""
        body = asset_body(guid, **fields)
        return await self.client.post(f"{ARS}/assetmetadata", params={"allocation_mb": allocation_mb}, json=body)

    async def upload(
        self, guid: str, name: str, data: bytes, *, crc: int | None = None, size_mb: int = 1
    ) -> httpx.Response:
        """PUT ``data`` as file ``name`` of ``guid`` with its real CRC unless ``crc`` is given."""
        params = {"crc": zlib.crc32(data) if crc is None else crc, "file_size_mb": size_mb}
        url = f"{FP}/assetfiles/test-institution/test-collection/{guid}/{name}"
        return await self.client.put(url, params=params, content=data)

    async def sync(self, guid: str) -> httpx.Response:
        """POST synchronize for ``guid``."""
        params = {"workstation": "test-workstation", "pipeline": "test-pipeline"}
        return await self.client.post(f"{FP}/shares/assets/{guid}/synchronize", params=params)

    async def status(self, guid: str) -> httpx.Response:
        """GET the status record of ``guid``."""
        return await self.client.get(f"{ARS}/assets/status/{guid}")

    async def open_share(self, guid: str, allocation_mb: int = 10) -> httpx.Response:
        """POST createShare for the existing asset ``guid``."""
        body = {
            "assets": [{"asset_guid": guid}],
            "users": ["service-account-integration"],
            "allocation_mb": allocation_mb,
        }
        return await self.client.post(f"{FP}/shares/assets/{guid}/createShare", json=body)

    async def delete_share(self, guid: str) -> httpx.Response:
        """DELETE the share of ``guid`` (discard without sync)."""
        return await self.client.delete(f"{FP}/shares/assets/{guid}/deleteShare")

    async def files(self, guid: str) -> list[dict[str, Any]]:
        """The ``DasscoFile`` records of ``guid`` (``GET /assets/{guid}/files``)."""
        files: list[dict[str, Any]] = (await self.client.get(f"{FP}/assets/{guid}/files")).json()
        return files


def asset_body(guid: str, **fields: Any) -> dict[str, Any]:
    """A valid E3 create body for the seeded reference data."""
    body: dict[str, Any] = {
        "asset_guid": guid,
        "asset_pid": f"https://pid.example/{guid}",
        "status": "WORKING_COPY",
        "institution": "test-institution",
        "collection": "test-collection",
        "pipeline": "test-pipeline",
        "workstation": "test-workstation",
        "digitiser": "jdoe",
        "parent_guids": [],
        "funding": ["DaSSCo"],
        "asset_subject": "specimen",
        "payload_type": "image",
        "file_formats": ["TIF"],
        "tags": {"batch": "b-17"},
        "issues": [],
    }
    body.update(fields)
    return body


@asynccontextmanager
async def open_ars(settings: EmulatorSettings) -> AsyncIterator[Ars]:
    """An emulator built from ``settings`` and a client authenticated through its token endpoint."""
    app, emulator = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ars") as client:
        form = {"grant_type": "client_credentials", "client_id": "integration", "client_secret": "integration-secret"}
        token = (await client.post("/keycloak/realms/dassco/protocol/openid-connect/token", data=form)).json()
        client.headers["Authorization"] = f"Bearer {token['access_token']}"
        yield Ars(app, emulator, client)
