"""`integration retry` over many assets: one asset's refusal is its own result, ARS going away midway leaves the
rest unchanged with the reason, and an asset moved to `syncing` is handed to the sync poller at once."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from actor_support import Harness, harness
from asset_support import FakeArs, guid_of, record
from integration.actors import RetryRequest, retry_assets
from integration.adapters.ars import AssetStatus
from integration.errors import ArsRejected, ArsUnavailable
from integration.state_machines import AssetState, AssetTrigger


async def quarantined(h: Harness, *numbers: int) -> list[str]:
    guids = [guid_of(n) for n in numbers]
    for guid in guids:
        await record(h, guid)
        await h.store.assets.transition(
            guid, AssetTrigger.QUARANTINE, expected=AssetState.INGESTED, reason="bad", actor="t"
        )
    return guids


def request(guids: list[str]) -> RetryRequest:
    return RetryRequest(guids=guids, reason="fixed in ARS", by="tester")


async def test_ars_going_away_midway_leaves_the_rest_unchanged_with_the_reason(tmp_path: Path) -> None:
    """The first asset is moved; ARS then stops answering: the others are reported unchanged, saying why."""
    ars = FakeArs()
    async with harness(tmp_path) as h:
        guids = await quarantined(h, 1, 2, 3)
        real = ars.get_status
        calls = {"n": 0}

        async def failing_after_one(guid: str) -> AssetStatus | None:
            calls["n"] += 1
            if calls["n"] > 1:
                raise ArsUnavailable("ARS did not answer within 30 s")
            return await real(guid)

        ars.get_status = failing_after_one  # type: ignore[method-assign]
        results = await retry_assets(request(guids), store=h.store, ars=ars)  # type: ignore[arg-type]
        assert [(r.guid, r.outcome) for r in results] == [
            (guids[0], "moved"),
            (guids[1], "unchanged"),
            (guids[2], "unchanged"),
        ]
        assert results[1].message == "not moved: ARS did not answer within 30 s"
        assert results[2].state == "quarantined"
        for guid in guids[1:]:
            left = await h.store.assets.get(guid)
            assert left is not None
            assert left.state is AssetState.QUARANTINED


async def test_ars_down_at_the_first_asset_changes_nothing_and_says_so(tmp_path: Path) -> None:
    """When ARS cannot be asked at all, the retry raises (the command prints why); nothing moved."""
    ars = FakeArs()
    ars.refusals["get_status"] = [ArsUnavailable("ARS did not answer")]
    async with harness(tmp_path) as h:
        guids = await quarantined(h, 4, 5)
        with pytest.raises(ArsUnavailable):
            await retry_assets(request(guids), store=h.store, ars=ars)  # type: ignore[arg-type]
        assert await h.store.assets.counts_by_state() == {"quarantined": 2}


async def test_one_assets_refusal_is_its_result_and_the_others_move(tmp_path: Path) -> None:
    """ARS refuses one asset's corrected metadata: that asset is 'refused' with ARS's words; the next moves."""
    ars = FakeArs()
    async with harness(tmp_path) as h:
        guids = await quarantined(h, 6, 7)
        for guid in guids:
            ars.hold(guid)
        await h.store.run(
            lambda c: c.execute(
                "INSERT INTO intents (entity_kind, entity_id, operation, key, detail, started_at) "
                "VALUES ('asset', ?, 'update_metadata', 'k', '', 0)",
                (guids[0],),
            )
        )
        ars.refusals["update_asset"] = [ArsRejected("Specimen X doesn't exist", status_code=400)]
        results = await retry_assets(request(guids), store=h.store, ars=ars)  # type: ignore[arg-type]
        assert [(r.outcome, r.state) for r in results] == [("refused", "quarantined"), ("moved", "created_in_ars")]
        assert "Specimen X doesn't exist" in results[0].message


async def test_an_asset_moved_to_syncing_is_handed_to_the_sync_poller(tmp_path: Path) -> None:
    """ARS is synchronising the asset already: the retry moves it to syncing and wakes the poller (not the
    dispatcher); an asset moved to created_in_ars wakes the dispatcher."""
    ars = FakeArs()
    woken: list[str] = []
    polls: list[bool] = []

    async def wake(guid: str, why: str) -> None:
        woken.append(guid)

    async with harness(tmp_path) as h:
        syncing, uploading = await quarantined(h, 8, 9)
        for guid in (syncing, uploading):
            ars.hold(guid)
        ars.assets[syncing] = msgspec.structs.replace(ars.assets[syncing], internal_status="ASSET_RECEIVED")
        for stored in await h.store.assets.files(syncing):
            ars.files.setdefault(syncing, {})[stored.record.name] = stored.record.crc32
        results = await retry_assets(
            request([syncing, uploading]),
            store=h.store,
            ars=ars,  # type: ignore[arg-type]
            wake=wake,
            wake_poller=lambda: polls.append(True),
        )
        assert [r.state for r in results] == ["syncing", "created_in_ars"]
        assert polls == [True]
        assert woken == [uploading]
        moved = await h.store.assets.get(syncing)
        assert moved is not None
        assert moved.wake is not None
        assert moved.wake.kind == "sync_poll"
