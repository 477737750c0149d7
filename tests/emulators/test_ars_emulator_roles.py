"""Clients and realm roles of the ARS emulator: who may call which endpoint (spec §2, §3, §4)."""

from __future__ import annotations

import base64
import json
from typing import Any

import msgspec
import pytest

from emulators.ars_support import ARS, FP, Ars, asset_body, open_ars
from integration.emulators.ars import EmulatorSettings, load_settings
from integration.errors import ConfigError

GUID = "asset-0001"
TOKEN = "/keycloak/realms/dassco/protocol/openid-connect/token"
FOLDER = f"{FP}/assetfiles/test-institution/test-collection/{GUID}"


def _roles(token: str) -> list[str]:
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    roles: list[str] = claims["realm_access"]["roles"]
    return roles


async def test_admin_client_gets_a_dassco_admin_token(ars: Ars) -> None:
    """The admin client's credentials (integration-admin by default) yield a token with role dassco-admin."""
    form = {
        "grant_type": "client_credentials",
        "client_id": "integration-admin",
        "client_secret": "integration-admin-secret",
    }
    reply = await ars.client.post(TOKEN, data=form)
    assert reply.status_code == 200
    assert _roles(reply.json()["access_token"]) == ["dassco-admin"]
    form["client_secret"] = "integration-secret"
    assert (await ars.client.post(TOKEN, data=form)).status_code == 401


async def test_token_without_roles_gets_bare_403_where_roles_are_required(settings: EmulatorSettings) -> None:
    """With client_roles=() each role-guarded endpoint answers a bare 403; token-only endpoints still answer."""
    async with open_ars(msgspec.structs.replace(settings, client_roles=())) as ars:
        assert _roles(ars.client.headers["Authorization"].removeprefix("Bearer ")) == []
        guarded: list[tuple[str, str, dict[str, Any]]] = [
            ("POST", f"{ARS}/assetmetadata", {"params": {"allocation_mb": 1}, "json": asset_body(GUID)}),
            ("GET", f"{ARS}/assetmetadata/{GUID}", {}),
            ("GET", f"{ARS}/assets/status/{GUID}", {}),
            ("GET", f"{ARS}/assets/inprogress", {}),
            ("GET", f"{ARS}/institutions", {}),
            ("GET", f"{ARS}/lists/statuses", {}),
            ("GET", f"{FP}/assets/{GUID}/files", {}),
            ("GET", f"{FP}/shares", {}),
            ("PUT", f"{FOLDER}/a.tif", {"params": {"crc": 1, "file_size_mb": 1}, "content": b"x"}),
            ("POST", f"{FP}/shares/assets/{GUID}/synchronize", {}),
        ]
        for method, url, options in guarded:
            reply = await ars.client.request(method, url, **options)
            assert (reply.status_code, reply.content) == (403, b""), url
        events = await ars.client.get(f"{ARS}/assetmetadata/{GUID}/events")
        assert (events.status_code, events.json()["errorMessage"]) == (400, "Asset doesnt exist")
        assert (await ars.client.get(f"{FOLDER}/")).json() == []
        assert ars.emulator.stats().create_requests == 0


async def test_client_roles_are_configurable(settings: EmulatorSettings) -> None:
    """A dassco-developer client may create and open shares but not change an allocation (A,S only)."""
    async with open_ars(msgspec.structs.replace(settings, client_roles=("dassco-developer",))) as ars:
        assert (await ars.create(GUID)).status_code == 200
        body = {"asset_guid": GUID, "new_allocation_mb": 20}
        reply = await ars.client.post(f"{FP}/shares/assets/{GUID}/changeAllocation", json=body)
        assert (reply.status_code, reply.content) == (403, b"")
        async with ars.admin() as admin:
            reply = await admin.post(f"{FP}/shares/assets/{GUID}/changeAllocation", json=body)
            assert reply.json()["http_allocation_status"] == "SUCCESS"


async def test_service_user_may_not_delete(ars: Ars) -> None:
    """Deleting a file in a share or an asset is dassco-admin only: a service-user token gets a bare 403."""
    await ars.create(GUID)
    await ars.upload(GUID, "a.tif", b"x")
    for path in (f"{FOLDER}/a.tif", f"{ARS}/assetmetadata/{GUID}", f"{ARS}/assetmetadata/{GUID}/deleteMetadata"):
        reply = await ars.client.delete(path)
        assert (reply.status_code, reply.content) == (403, b""), path
    assert ars.emulator.share_path(GUID, "a.tif").exists()
    assert (await ars.status(GUID)).status_code == 200


def test_admin_client_id_must_differ_from_client_id() -> None:
    """Settings with the same id for both clients are refused, naming the field."""
    with pytest.raises(ConfigError, match="admin_client_id must differ from client_id"):
        load_settings(overrides={"admin_client_id": "integration"})
    assert load_settings(overrides={"admin_client_id": "boss"}).admin_client_id == "boss"
