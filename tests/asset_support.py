"""The asset actor's test double of ARS and helpers: an ARS that holds assets and files, with scripted refusals."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import trio

from actor_support import Harness
from integration.actors import AssetDeps, drive_asset
from integration.adapters.ars import ArsAsset, ArsFile, AssetStatus, CreatedAsset, ShareInfo
from integration.domain import FileKind, FileRecord
from integration.errors import ArsConflict
from integration.store import AssetRecord, NewAsset

ME = "service-account-integration"


def guid_of(n: int) -> str:
    return f"7e8-8-08-0c-1b-15-2-003-04-000-{n:06x}"


class FakeArs:
    """Just enough of ArsClient: an ARS that holds assets and files, with scripted refusals per operation."""

    def __init__(self) -> None:
        self.assets: dict[str, ArsAsset] = {}
        self.files: dict[str, dict[str, int]] = {}
        self.refusals: dict[str, list[Exception]] = {}  # operation -> errors raised (one per call) before success
        self.calls: dict[str, int] = {}
        self.closed: set[str] = set()  # assets whose share is closed (synced or discarded)

    def _call(self, operation: str) -> None:
        self.calls[operation] = self.calls.get(operation, 0) + 1
        errors = self.refusals.get(operation)
        if errors:
            raise errors.pop(0)

    def hold(self, guid: str, *, created_by: str = ME, institution: str = "test-institution") -> None:
        self.assets[guid] = ArsAsset(
            asset_guid=guid,
            institution=institution,
            collection="test-collection",
            workstation="test-workstation",
            pipeline="test-pipeline",
            internal_status="METADATA_RECEIVED",
            created_by=created_by,
        )

    async def username(self) -> str:
        return ME

    async def get_status(self, guid: str) -> AssetStatus | None:
        self._call("get_status")
        if guid not in self.assets:
            return None
        share = None if guid in self.closed else 2
        return AssetStatus(asset_guid=guid, status=self.assets[guid].internal_status or "", share_allocation_mb=share)

    async def get_asset(self, guid: str) -> ArsAsset | None:
        self._call("get_asset")
        return self.assets.get(guid)

    async def create_asset(self, body: dict[str, Any], *, allocation_mb: int) -> CreatedAsset:
        guid = str(body["asset_guid"])
        self._call("create_asset")
        if guid in self.assets:
            raise ArsConflict("exists", status_code=400, error_message=f"Asset {guid} already exists", kind="exists")
        self.hold(guid)
        return CreatedAsset(guid=guid, share_path="/x", allocated_mb=allocation_mb)

    async def update_asset(self, guid: str, body: dict[str, Any]) -> None:
        self._call("update_asset")

    async def upload_file(self, *, guid: str, name: str, crc32: int, **kwargs: Any) -> None:
        self._call("upload_file")
        self.files.setdefault(guid, {})[name] = crc32

    async def open_share(self, guid: str, **kwargs: Any) -> ShareInfo:
        self._call("open_share")
        self.closed.discard(guid)
        return ShareInfo(path="/x", allocated_mb=int(kwargs["allocation_mb"]))

    async def list_files(self, guid: str) -> list[ArsFile]:
        self._call("list_files")
        return [
            ArsFile(path=f"/i/c/{guid}/{name}", size_bytes=1, crc=crc, sync_status="NEW_FILE")
            for name, crc in self.files.get(guid, {}).items()
        ]

    async def synchronize(self, guid: str, **kwargs: Any) -> None:
        self._call("synchronize")


async def record(
    h: Harness,
    guid: str,
    *,
    workstation: str = "test-workstation",
    local: Path | None = None,
    taken: str = "2024-08-08T12:27:21+02:00",
) -> None:
    """Record an ingested asset whose one image file exists locally (unless ``local`` says otherwise)."""
    path = local or (Path(h.config.storage.root) / guid / f"{guid}.tif")
    if local is None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"II*\x00image")
    metadata = {
        "asset_guid": guid,
        "institution": "test-institution",
        "collection": "test-collection",
        "pipeline_name": "test-pipeline",
        "workstation_name": workstation,
        "file_format": "tif",
        "date_asset_taken": taken,
        "digitiser": "jdoe",
    }
    image = FileRecord(name=f"{guid}.tif", kind=FileKind.IMAGE, size=9, crc32=12345, local_path=str(path))
    await h.store.assets.record_ingested(
        NewAsset(
            guid=guid,
            pipeline="test-pipeline",
            institution="test-institution",
            collection="test-collection",
            workstation=workstation,
            session="/n/s",
            local_dir=str(path.parent),
            allocation_mb=2,
            metadata_json=json.dumps(metadata).encode(),
            files=((image, f"/n/s/{guid}.tif"),),
        ),
        actor="test",
    )


def deps(h: Harness, ars: FakeArs, health: Mapping[str, Callable[[], Awaitable[None]]] | None = None) -> AssetDeps:
    """The asset actor's dependencies over ``ars`` (no health probes unless given: every site error is believed)."""
    return AssetDeps(
        store=h.store,
        ars=ars,  # type: ignore[arg-type]
        lanes=h.lanes,
        config=h.config,
        health=health or {},
        clock=trio.current_time,
    )


async def drive(
    h: Harness, ars: FakeArs, guid: str, *, health: Mapping[str, Callable[[], Awaitable[None]]] | None = None
) -> AssetRecord:
    """Drive ``guid`` once (as the dispatcher would) and return its record afterwards."""
    await drive_asset(guid, deps(h, ars, health))
    found = await h.store.assets.get(guid)
    assert found is not None
    return found
