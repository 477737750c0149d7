"""The small fake ARS the test_ars_* modules share (httpx.MockTransport, no sockets), and tests pinning it to the spec.

Import it as ``from adapters.test_ars_fake import ...`` (``tests`` is on the path).
"""

from __future__ import annotations

import base64
import json
import re
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import trio

from integration.adapters.ars import ArsClient, SecretProvider, open_ars_client
from integration.config import ArsConfig, RetryConfig

BASE = "http://ars.test"
TOKEN_URL = f"{BASE}/keycloak/realms/dassco/protocol/openid-connect/token"
SECRET = "s3cret-value"
GUID = "7e8-8-08-0c-1b-15-2-003-04-000-01e240"
CONFIG = ArsConfig(base_url=BASE, token_url=TOKEN_URL, client_id="integration", request_timeout_s=10.0)
RETRY = RetryConfig(attempts=3, initial_s=0.5, max_s=2.0, jitter_s=0.1)
USER = "service-account-integration"
SHARE_NODE = "https://share-node.internal/file_proxy/api"

Handler = Callable[[httpx.Request], httpx.Response] | Callable[[httpx.Request], Coroutine[None, None, httpx.Response]]

_FILE = r"/file_proxy/api/assetfiles/(?P<i>[^/]+)/(?P<c>[^/]+)/(?P<guid>[^/]+)"
_ROUTES = (
    ("POST", re.compile(r"/keycloak/.*/token"), "token"),
    ("GET", re.compile(r"/ars/actuator/health"), "health"),
    ("GET", re.compile(r"/ars/api/v1/institutions"), "institutions"),
    ("POST", re.compile(r"/ars/api/v1/assetmetadata"), "create"),
    ("GET", re.compile(r"/ars/api/v1/assetmetadata/(?P<guid>[^/]+)"), "asset"),
    ("PUT", re.compile(r"/ars/api/v1/assetmetadata/(?P<guid>[^/]+)"), "update"),
    ("GET", re.compile(r"/ars/api/v1/assets/status/(?P<guid>[^/]+)"), "status"),
    ("GET", re.compile(r"/ars/api/v1/assets/inprogress"), "inprogress"),
    ("GET", re.compile(_FILE + "/"), "listing"),
    ("PUT", re.compile(_FILE + r"/(?P<name>.+)"), "upload"),
    ("DELETE", re.compile(_FILE + r"/(?P<name>.+)"), "delete_file"),
    ("POST", re.compile(r"/file_proxy/api/shares/assets/(?P<guid>[^/]+)/synchronize"), "sync"),
    ("POST", re.compile(r"/file_proxy/api/shares/assets/(?P<guid>[^/]+)/createShare"), "create_share"),
    ("DELETE", re.compile(r"/file_proxy/api/shares/assets/(?P<guid>[^/]+)/deleteShare"), "delete_share"),
    ("GET", re.compile(r"/file_proxy/api/assets/(?P<guid>[^/]+)/files"), "files"),
)


def error(status: int, message: str, code: str = "BAD_REQUEST") -> httpx.Response:
    """An ARS / file-proxy error envelope (ars-api.md §1)."""
    envelope = {"type": "Error", "protocolVersion": "1.0", "errorCode": code, "errorMessage": message}
    return httpx.Response(status, json=envelope)


def share_answer(status: int, allocation: str, text: str | None = None, **fields: Any) -> httpx.Response:
    """A file-proxy HttpInfo answer (§5.6): the allocation status is inside the body."""
    info = {"path": None, "hostname": SHARE_NODE, "total_storage_mb": 90_000, "cache_storage_mb": 200,
            "remaining_storage_mb": None, "allocated_storage_mb": 0, "allocation_status_text": text,
            "http_allocation_status": allocation, **fields}  # fmt: skip
    return httpx.Response(status, json=info)


def jwt(claims: dict[str, Any]) -> str:
    """An unsigned JWT with ``claims`` (the client reads claims, ARS verifies them)."""

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}.sig"


@dataclass
class FakeArs:
    """Just enough ARS: JWTs that expire, assets with a share, uploads with a CRC check, scripted failures."""

    token_lifetime: float = 300.0
    secret: str = SECRET
    remaining_mb: int = 10_000
    report_remaining: bool = True  # whether DISK_FULL answers say how much is free
    admin: bool = False  # the client has dassco-admin (may delete files in a share, file proxy >= 2.7.4)
    healthy: bool = True
    commit_then_fail: bool = False  # scripted create/createShare failures happen after the work was done
    script: dict[str, list[int]] = field(default_factory=dict)  # route -> statuses answered before real work
    tokens: dict[str, float] = field(default_factory=dict)  # token -> expiry on the trio clock
    assets: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: dict[str, dict[str, bytes]] = field(default_factory=dict)
    parent_files: dict[str, list[str]] = field(default_factory=dict)  # guid -> "parents/<g>/<name>" in its share
    uploads: list[httpx.Request] = field(default_factory=list)
    share_requests: list[dict[str, Any]] = field(default_factory=list)
    hits: Counter[str] = field(default_factory=Counter)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        route, args = self._route(request)
        self.hits[route] += 1
        if route == "token":
            return self._token(request)
        if route != "health" and not self._authorised(request):
            return httpx.Response(401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        if self.script.get(route):
            status = self.script[route].pop(0)
            if route in ("create", "create_share") and self.commit_then_fail:
                getattr(self, f"_{route}")(request, **args)
            return httpx.Response(status, text="<html>gateway trouble</html>")
        handler: Callable[..., httpx.Response] = getattr(self, f"_{route}")
        return handler(request, **args)

    def add_asset(
        self, guid: str = GUID, *, status: str = "METADATA_RECEIVED", share_mb: int | None = 5, user: str = USER
    ) -> None:
        """An asset ARS knows, with an open share of ``share_mb`` MB (``None``: closed)."""
        body = {"asset_guid": guid, "institution": "NHMD", "collection": "Vascular plants"}
        self.assets[guid] = {"status": status, "share_allocation_mb": share_mb, "body": body, "user": user}
        self.files.setdefault(guid, {})

    def _route(self, request: httpx.Request) -> tuple[str, dict[str, str]]:
        for method, pattern, name in _ROUTES:
            match = pattern.fullmatch(request.url.path)
            if request.method == method and match:
                return name, match.groupdict()
        raise AssertionError(f"unexpected request {request.method} {request.url}")

    def _authorised(self, request: httpx.Request) -> bool:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        return self.tokens.get(token, -1.0) > trio.current_time()

    def _token(self, request: httpx.Request) -> httpx.Response:
        form = dict(httpx.QueryParams(request.content.decode()))
        if self.script.get("token"):
            return httpx.Response(self.script["token"].pop(0))
        expected = {"grant_type": "client_credentials", "client_id": "integration", "client_secret": self.secret}
        if form != {**expected, "scope": "openid"}:
            return httpx.Response(401, json={"error": "invalid_client", "error_description": "Invalid client secret"})
        claims = {"preferred_username": USER, "jti": self.hits["token"], "realm_access": {"roles": ["service-user"]}}
        token = jwt(claims)
        self.tokens[token] = trio.current_time() + self.token_lifetime
        return httpx.Response(200, json={"access_token": token, "expires_in": self.token_lifetime})

    def _health(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(200 if self.healthy else 503, json={"status": "UP" if self.healthy else "DOWN"})

    def _institutions(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=[{"name": "NHMD", "roleRestrictions": []}])

    def _disk_full(self, status: int, body: dict[str, Any] | None = None) -> httpx.Response:
        remaining = self.remaining_mb if self.report_remaining else None
        info = {"path": None, "hostname": SHARE_NODE, "remaining_storage_mb": remaining, "allocated_storage_mb": 0,
                "allocation_status_text": None, "http_allocation_status": "DISK_FULL"}  # fmt: skip
        return httpx.Response(status, json={**body, "httpInfo": info} if body is not None else info)

    def _create(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        guid, allocation = body["asset_guid"], int(request.url.params["allocation_mb"])
        if guid in self.assets:
            return error(400, f"Asset {guid} already exists")
        if allocation > self.remaining_mb:
            return self._disk_full(403, body)
        self.add_asset(guid, share_mb=allocation)
        self.assets[guid]["body"] = body
        path = f"/assetfiles/{body['institution']}/{body['collection']}/{guid}/"
        info = {"path": path, "hostname": SHARE_NODE, "remaining_storage_mb": self.remaining_mb - allocation,
                "allocated_storage_mb": allocation, "http_allocation_status": "SUCCESS"}  # fmt: skip
        return httpx.Response(200, json={**body, "httpInfo": info, "internal_status": "METADATA_RECEIVED"})

    def _status_info(self, guid: str) -> dict[str, Any]:
        asset = self.assets[guid]
        return {"asset_guid": guid, "parent_guid": [], "error_timestamp": None, "status": asset["status"],
                "error_message": None, "share_allocation_mb": asset["share_allocation_mb"]}  # fmt: skip

    def _status(self, request: httpx.Request, guid: str) -> httpx.Response:
        return httpx.Response(200, json=self._status_info(guid)) if guid in self.assets else httpx.Response(404)

    def _asset(self, request: httpx.Request, guid: str) -> httpx.Response:
        if guid not in self.assets:
            return httpx.Response(204)
        asset = self.assets[guid]
        events = [
            {"event": "UPDATE_ASSET_METADATA", "user": "someone-else", "timestamp": "2026-01-02T00:00:00Z"},
            {"event": "CREATE_ASSET_METADATA", "user": asset["user"], "timestamp": "2026-01-01T00:00:00Z"},
        ]
        record = {"parent_guids": [], "file_formats": ["TIF"], "updateUser": "someone-else", **asset["body"]}
        return httpx.Response(200, json={**record, "internal_status": asset["status"], "events": events})

    def _update(self, request: httpx.Request, guid: str) -> httpx.Response:
        body = json.loads(request.content)
        if body.get("asset_guid") != guid:
            return error(400, "asset_guid in URL must match asset_guid in POST-message")
        if guid not in self.assets:
            return error(400, f"Asset {guid} does not exist")
        if self.assets[guid]["status"] == "SPECIFY_SYNC_SCHEDULED":
            return error(403, "Asset is synchronising to specify, please await completion", "FORBIDDEN")
        self.assets[guid]["body"] = body
        return httpx.Response(200, json=body)

    def _inprogress(self, request: httpx.Request) -> httpx.Response:
        assert request.url.params["onlyFailed"] == "false"
        return httpx.Response(200, json=[self._status_info(guid) for guid in self.assets])

    def _open(self, guid: str) -> bool:
        return guid in self.assets and self.assets[guid]["share_allocation_mb"] is not None

    def _upload(self, request: httpx.Request, i: str, c: str, guid: str, name: str) -> httpx.Response:
        self.uploads.append(request)
        if not self._open(guid):
            return error(400, "There is no writeable directory for this asset")
        expected, actual = int(request.url.params["crc"]), zlib.crc32(request.content)
        if expected != actual:
            return httpx.Response(507, json={"expected_crc": expected, "actual_crc": actual})
        self.files[guid][name] = request.content
        return httpx.Response(200, json={"expected_crc": expected, "actual_crc": actual})

    def _listing(self, request: httpx.Request, i: str, c: str, guid: str) -> httpx.Response:
        if not self._open(guid):
            return httpx.Response(200, json=[])  # the file proxy lists a folder that does not exist
        names = [*self.files[guid], *self.parent_files.get(guid, [])]
        return httpx.Response(200, json=[f"{SHARE_NODE}/assetfiles/{i}/{c}/{guid}/{name}" for name in names])

    def _delete_file(self, request: httpx.Request, i: str, c: str, guid: str, name: str) -> httpx.Response:
        if not self.admin:
            return httpx.Response(403)  # Jersey's @RolesAllowed: no envelope
        if not self._open(guid):
            return error(400, "No writable directory was found for asset")
        if self.files[guid].pop(name, None) is None:
            return error(404, f"Asset file not found for institution: {i}", "NOT_FOUND")
        return httpx.Response(204)

    def _sync(self, request: httpx.Request, guid: str) -> httpx.Response:
        if not self._open(guid):
            return error(400, "No writeable share for asset found")
        self.assets[guid]["status"] = "ASSET_RECEIVED"
        self.assets[guid]["synced_by"] = dict(request.url.params)
        return httpx.Response(204)

    def _create_share(self, request: httpx.Request, guid: str) -> httpx.Response:
        body = json.loads(request.content)
        self.share_requests.append(body)
        if guid not in self.assets:
            return error(400, f"Asset [{guid}] was not found", "FORBIDDEN")
        if self._open(guid):
            return error(400, "Asset is already checked out", "FORBIDDEN")
        allocation = body["allocation_mb"]
        if allocation > self.remaining_mb:
            return self._disk_full(200)
        self.assets[guid]["share_allocation_mb"] = allocation
        asset = body["assets"][0]
        path = f"/assetfiles/{asset['institution']}/{asset['collection']}/{guid}/"
        return share_answer(200, "SUCCESS", path=path, allocated_storage_mb=allocation, remaining_storage_mb=9_000)

    def _delete_share(self, request: httpx.Request, guid: str) -> httpx.Response:
        if not self._open(guid):
            return share_answer(404, "SHARE_NOT_FOUND", "No share found")
        if self.assets[guid]["status"] == "ASSET_RECEIVED":
            return share_answer(400, "BAD_REQUEST", "Share is synchronizing")
        self.assets[guid]["share_allocation_mb"] = None
        self.files[guid].clear()
        return share_answer(200, "SUCCESS", "Share deleted")

    def _files(self, request: httpx.Request, guid: str) -> httpx.Response:
        rows = [
            {"fileId": n, "assetGuid": guid, "path": f"/i/c/{guid}/{name}", "sizeBytes": len(data),
             "crc": zlib.crc32(data), "deleteAfterSync": False, "syncStatus": "NEW_FILE", "mime_type": "image/tiff"}
            for n, (name, data) in enumerate(self.files.get(guid, {}).items())
        ]  # fmt: skip
        return httpx.Response(200, json=rows)


def create_body(guid: str = GUID) -> dict[str, Any]:
    """A minimal E3 create body."""
    return {"asset_guid": guid, "asset_pid": f"urn:dassco:{guid}", "status": "WORKING_COPY", "institution": "NHMD",
            "collection": "Vascular plants", "pipeline": "PIPEHERB0001", "workstation": "WORKHERB0001",
            "digitiser": "jdoe"}  # fmt: skip


def answering(response: httpx.Response) -> Handler:
    """A handler that grants tokens and answers every other request with ``response``."""

    def handler(request: httpx.Request) -> httpx.Response:
        if "keycloak" in request.url.path:
            return httpx.Response(200, json={"access_token": "t", "expires_in": 300})
        return response

    return handler


@asynccontextmanager
async def client_for(
    handler: Handler,
    *,
    retry: RetryConfig = RETRY,
    config: ArsConfig = CONFIG,
    secret: str | SecretProvider = SECRET,
    transport: httpx.AsyncBaseTransport | None = None,
    limiter: trio.CapacityLimiter | None = None,
) -> AsyncIterator[ArsClient]:
    """An ArsClient whose requests go to ``handler`` (or ``transport``)."""
    chosen = transport or httpx.MockTransport(handler)
    async with open_ars_client(config, retry, secret=secret, transport=chosen, limiter=limiter) as client:
        yield client


# --- the fake itself ------------------------------------------------------------------------------------------


async def test_fake_issues_jwts_naming_the_service_account() -> None:
    """The fake's tokens are JWTs whose preferred_username is Keycloak's service-account name (ars-api.md §2)."""
    fake = FakeArs()
    request = httpx.Request("POST", TOKEN_URL, data={"grant_type": "client_credentials", "client_id": "integration",
                                                     "client_secret": SECRET, "scope": "openid"})  # fmt: skip
    token = fake(request).json()["access_token"]
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert claims["preferred_username"] == USER


async def test_fake_refuses_a_wrong_secret_like_keycloak() -> None:
    """A wrong secret gets Keycloak's 401 invalid_client, as the real token endpoint answers it."""
    fake = FakeArs(secret="other")
    request = httpx.Request("POST", TOKEN_URL, data={"grant_type": "client_credentials", "client_id": "integration",
                                                     "client_secret": SECRET, "scope": "openid"})  # fmt: skip
    answer = fake(request)
    assert (answer.status_code, answer.json()["error"]) == (401, "invalid_client")
