"""Results back to ARS against the ARS emulator in-process (real client over ASGI): the full-record update and
its race checks by ARS's events, which codes become specimens, and MOS linking (original-integration §3.4)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from actor_support import Harness, harness
from asset_support import guid_of, record
from daemon_support import SECRET
from integration.actors import AssetDeps
from integration.actors._ars_record import WRITABLE_FIELDS, Wanted, replaced_updates, update_record
from integration.actors._ars_steps import create_body
from integration.actors._mos import link_mos, mos_entry
from integration.actors._results import ProcessingResults, push_results
from integration.adapters.ars import open_ars_client
from integration.demo import demo_emulator_settings
from integration.domain import BarcodeView, OcrView
from integration.emulators.ars import ArsEmulator, create_app
from integration.errors import ArsRejected, GroupHeld, TransientError
from integration.store import AssetRecord


class World:
    def __init__(self, h: Harness, emulator: ArsEmulator, deps: AssetDeps) -> None:
        self.h = h
        self.emulator = emulator
        self.deps = deps

    async def asset(self, n: int, **recorded: str) -> AssetRecord:
        """An ingested asset that ARS holds."""
        guid = guid_of(n)
        await record(self.h, guid, **recorded)
        found = await self.h.store.assets.get(guid)
        assert found is not None
        await self.deps.ars.create_asset(await create_body(found, self.h.store), allocation_mb=2)
        return await self.h.store.assets.update(guid, expected=found.state, in_ars=True)

    async def document(self, guid: str) -> dict[str, Any]:
        found = await self.deps.ars.get_asset_document(guid)
        assert found is not None
        return found

    async def specimens(self, guid: str) -> list[str]:
        return [s["specimen"]["barcode"] for s in (await self.document(guid))["asset_specimen"]]

    async def updates(self, guid: str) -> list[str]:
        return [e["user"] for e in (await self.document(guid))["events"] if e["event"] == "UPDATE_ASSET_METADATA"]

    async def notes(self, guid: str, trigger: str) -> list[str]:
        return [e.reason for e in await self.h.store.assets.events(guid) if e.trigger == trigger]


@asynccontextmanager
async def world(tmp_path: Path) -> AsyncIterator[World]:
    app, emulator = create_app(demo_emulator_settings(tmp_path / "ars", secret=SECRET))
    async with harness(tmp_path) as h:
        transport = httpx.ASGITransport(app=app)
        async with open_ars_client(h.config.ars, h.config.retry, secret=SECRET, transport=transport) as client:
            deps = AssetDeps(store=h.store, ars=client, lanes=h.lanes, config=h.config)
            yield World(h, emulator, deps)


def specimen(*codes: str, disposable: str | None = None) -> BarcodeView:
    return BarcodeView(barcodes=list(codes), asset_subject="specimen", MSO=len(codes) > 1, MOS=disposable is not None,
                       disposable=disposable)  # fmt: skip


def label(disposable: str) -> BarcodeView:
    return BarcodeView(barcodes=[disposable], asset_subject="label", MOS=True, label=True, disposable=disposable)


def results(barcode: BarcodeView | None, ocr: str = "") -> ProcessingResults:
    return ProcessingResults(barcode=barcode, ocr=OcrView(tags_ocr=ocr) if ocr else None, missing_derivatives=[])


# --- the full-record update -----------------------------------------------------------------------------------


async def test_specimens_subject_and_ocr_are_written_once_and_a_repeat_writes_nothing(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        asset = await w.asset(1)
        summary = await push_results(asset, results(specimen("NHMD-0001", "NHMD-0002"), "Flora Danica"), w.deps)
        assert "NHMD-0001, NHMD-0002" in summary
        document = await w.document(asset.guid)
        assert await w.specimens(asset.guid) == ["NHMD-0001", "NHMD-0002"]
        assert document["asset_subject"] == "specimen"
        assert document["tags"]["ocr"] == "Flora Danica"
        assert len(await w.updates(asset.guid)) == 1
        await push_results(asset, results(specimen("NHMD-0001", "NHMD-0002"), "Flora Danica"), w.deps)
        assert len(await w.updates(asset.guid)) == 1  # the step repeated after a crash: nothing written twice


async def test_codes_of_a_device_target_a_folder_or_a_label_are_not_specimens(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        for n, view in enumerate(
            [
                BarcodeView(barcodes=["DT-CHART-1"], asset_subject="device target"),
                BarcodeView(barcodes=["FOLDER-ROSA"], asset_subject="folder"),
                BarcodeView(barcodes=["MOS-100"], asset_subject="label", MOS=True, label=True, disposable="MOS-100"),
            ],
            start=1,
        ):
            asset = await w.asset(n)
            await push_results(asset, results(view), w.deps)
            document = await w.document(asset.guid)
            assert document["asset_specimen"] == []
            assert document["tags"]["barcodes"] == view.barcodes[0]
        assert (await w.document(guid_of(1)))["tags"]["asset_type"] == "device target"  # unmapped: kept as a tag
        assert (await w.document(guid_of(2)))["asset_subject"] == "folder"


# --- concurrent changes ------------------------------------------------------------------------------------------


async def test_an_update_that_overwrote_ours_is_merged_again_and_keeps_theirs(tmp_path: Path) -> None:
    """Another writer's PUT, built from the record before ours, lands after ours: our values are gone on the
    re-read, so the merge runs again from their record; both changes stand, and no race is written down."""
    async with world(tmp_path) as w:
        asset = await w.asset(1)
        w.emulator.update_faults({"foreign_update_after_next_put": 1})
        await push_results(asset, results(specimen("NHMD-0001"), "words"), w.deps)
        document = await w.document(asset.guid)
        assert document["tags"]["ocr"] == "words"
        assert document["tags"]["curator_note"] == "set by a curator"
        assert await w.specimens(asset.guid) == ["NHMD-0001"]
        assert (await w.updates(asset.guid))[-3:] == [
            "service-account-integration", "curator", "service-account-integration"
        ]  # fmt: skip
        assert await w.notes(asset.guid, "ars_race") == []


async def test_an_update_between_our_read_and_our_write_is_written_down(tmp_path: Path) -> None:
    """A curator's update lands between our read and our PUT: ours replaces it (ARS cannot prevent that); the
    events show it, and the asset gets a note naming who and when, for a person to compare."""
    async with world(tmp_path) as w:
        asset = await w.asset(1)
        w.emulator.update_faults({"foreign_update_before_next_put": 1})
        await push_results(asset, results(specimen("NHMD-0001"), "words"), w.deps)
        document = await w.document(asset.guid)
        assert "curator_note" not in document["tags"]  # replaced by ours: the race that remains
        [note] = await w.notes(asset.guid, "ars_race")
        assert "curator" in note
        assert "may have replaced" in note


async def test_a_race_in_a_round_that_was_then_overwritten_is_still_written_down(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        asset = await w.asset(1)
        w.emulator.update_faults({"foreign_update_before_next_put": 1, "foreign_update_after_next_put": 1})
        await push_results(asset, results(specimen("NHMD-0001")), w.deps)
        assert await w.specimens(asset.guid) == ["NHMD-0001"]  # merged again in the second round
        assert len(await w.notes(asset.guid, "ars_race")) == 1  # the first round's race, once


async def test_without_events_in_the_record_they_are_asked_before_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An ARS whose record carries no events: they are fetched from the events endpoint, before the record, and
    a race is still found."""
    async with world(tmp_path) as w:
        asset = await w.asset(1)
        real_get = w.deps.ars.get_asset_document
        calls: list[str] = []

        async def without_events(guid: str) -> dict[str, Any] | None:
            calls.append("record")
            found = await real_get(guid)
            return {key: value for key, value in found.items() if key != "events"} if found else None

        real_events = w.deps.ars.list_events

        async def events(guid: str) -> list[dict[str, Any]]:
            calls.append("events")
            return await real_events(guid)

        monkeypatch.setattr(w.deps.ars, "get_asset_document", without_events)
        monkeypatch.setattr(w.deps.ars, "list_events", events)
        w.emulator.update_faults({"foreign_update_before_next_put": 1})
        await push_results(asset, results(specimen("NHMD-0001")), w.deps)
        assert calls[:3] == ["record", "events", "record"]
        assert len(await w.notes(asset.guid, "ars_race")) == 1


async def test_a_record_overwritten_every_time_is_a_transient_error_and_works_later(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        asset = await w.asset(1)
        w.emulator.update_faults({"foreign_update_after_next_put": 3})
        with pytest.raises(TransientError, match="3 times in a row"):
            await push_results(asset, results(specimen("NHMD-0001")), w.deps)
        await push_results(asset, results(specimen("NHMD-0001")), w.deps)
        assert await w.specimens(asset.guid) == ["NHMD-0001"]


def _event(user: str, at: str, pipeline: str | None) -> dict[str, Any]:
    return {"event": "UPDATE_ASSET_METADATA", "user": user, "timestamp": at, "pipeline": pipeline}


def test_replaced_updates_are_the_others_not_after_ours() -> None:
    old = [{"event": "CREATE_ASSET_METADATA", "user": "me", "timestamp": "2026-01-01T10:00:00Z", "pipeline": "p"}]
    mine = _event("me", "2026-01-01T10:00:05Z", "p")  # Java's ISO_INSTANT leaves a zero fraction out
    before = _event("curator", "2026-01-01T10:00:04.900Z", None)
    after = _event("curator", "2026-01-01T10:00:05.300Z", None)  # sorts before `mine` as text, is after it
    assert replaced_updates(old, [*old, mine], user="me", pipeline="p") == []
    assert replaced_updates(old, [*old, before, mine], user="me", pipeline="p") == [before]
    assert replaced_updates(old, [*old, mine, after], user="me", pipeline="p") == []
    same = _event("curator", "2026-01-01T10:00:05.000Z", None)
    assert replaced_updates(old, [*old, same, mine], user="me", pipeline="p") == [same]  # a tie: maybe before
    odd = _event("curator", "yesterday", None)
    assert replaced_updates(old, [*old, mine, odd], user="me", pipeline="p") == [odd]  # cannot tell: maybe before
    # our user unknown to the check (another token name): a single new update is ours; of two, the later is
    assert replaced_updates(old, [*old, mine], user="other", pipeline="p") == []
    assert replaced_updates(old, [*old, before, mine], user="other", pipeline="p") == [before]
    # events already seen are not new, whatever their order in the answer
    assert replaced_updates([*old, before], [mine, before, *old], user="me", pipeline="p") == []


# --- MOS -------------------------------------------------------------------------------------------------------


async def test_a_mos_label_and_its_specimens_are_linked_both_ways_in_either_order(tmp_path: Path) -> None:
    """Label L and specimens S1, S2 share disposable MOS-7 (same workstation and day). S1 writes its results
    before L: L's own update takes S1's first barcode. S2 writes after L: S2's update adds its first barcode to
    L. Every one gets mos_id; only L receives others' barcodes; the store links each with the two others."""
    async with world(tmp_path) as w:
        lab, s1, s2 = await w.asset(1), await w.asset(2), await w.asset(3)
        await link_mos(s1, specimen("NHMD-1001", "NHMD-1002", disposable="MOS-7"), w.deps)
        await push_results(s1, results(specimen("NHMD-1001", "NHMD-1002", disposable="MOS-7")), w.deps)
        await link_mos(lab, label("MOS-7"), w.deps)
        await link_mos(s2, specimen("NHMD-2001", disposable="MOS-7"), w.deps)
        await push_results(lab, results(label("MOS-7")), w.deps)
        assert await w.specimens(lab.guid) == ["NHMD-1001", "NHMD-2001"]  # S2 linked before L wrote: taken too
        summary = await push_results(s2, results(specimen("NHMD-2001", disposable="MOS-7")), w.deps)
        assert await w.specimens(lab.guid) == ["NHMD-1001", "NHMD-2001"]  # already there: nothing written again
        assert "label" not in summary
        assert await w.specimens(s1.guid) == ["NHMD-1001", "NHMD-1002"]
        assert await w.specimens(s2.guid) == ["NHMD-2001"]
        label_id = "test-workstation_2024-08-08_MOS-7"
        for guid in (lab.guid, s1.guid, s2.guid):
            document = await w.document(guid)
            assert document["mos_id"] == label_id
            assert document["tags"]["disposable_id"] == "MOS-7"
            entry = await w.h.store.mos.get(guid)
            assert entry is not None
            assert set(entry.connections) == {lab.guid, s1.guid, s2.guid} - {guid}
        assert (await w.h.store.mos.get(s1.guid)).spid == "test-institution_test-collection_NHMD-1001"  # type: ignore[union-attr]
        assert (await w.h.store.mos.get(lab.guid)).spid == "NOT_AVAILABLE"  # type: ignore[union-attr]


async def test_a_specimen_writing_after_its_label_gives_the_label_its_first_barcode(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        lab, s1 = await w.asset(1), await w.asset(2)
        await link_mos(lab, label("MOS-8"), w.deps)
        await push_results(lab, results(label("MOS-8")), w.deps)
        assert await w.specimens(lab.guid) == []
        await link_mos(s1, specimen("NHMD-3001", "NHMD-3002", disposable="MOS-8"), w.deps)
        summary = await push_results(s1, results(specimen("NHMD-3001", "NHMD-3002", disposable="MOS-8")), w.deps)
        assert await w.specimens(lab.guid) == ["NHMD-3001"]  # the first barcode only
        assert f"label {lab.guid} given NHMD-3001" in summary
        assert (await w.document(lab.guid))["tags"]["barcodes"] == "MOS-8"  # the label's own code kept


async def test_a_label_ars_no_longer_has_is_noted_on_both_and_does_not_stop_the_specimen(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        lab, s1 = await w.asset(1), await w.asset(2)
        await link_mos(lab, label("MOS-9"), w.deps)
        await link_mos(s1, specimen("NHMD-4001", disposable="MOS-9"), w.deps)
        del w.emulator.core.assets[lab.guid]
        await push_results(s1, results(specimen("NHMD-4001", disposable="MOS-9")), w.deps)
        assert await w.specimens(s1.guid) == ["NHMD-4001"]
        [on_specimen] = await w.notes(s1.guid, "mos")
        [on_label] = await w.notes(lab.guid, "mos")
        assert "did not take specimen NHMD-4001" in on_specimen
        assert lab.guid in on_specimen
        assert s1.guid in on_label


async def test_mos_assets_of_another_day_workstation_or_disposable_are_not_linked(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        first = await w.asset(1)
        others = [
            await w.asset(2, taken="2024-08-09T09:00:00+02:00"),
            await w.asset(3, workstation="test-workstation-2"),
            await w.asset(4),
        ]
        await link_mos(first, label("MOS-10"), w.deps)
        for other, code in zip(others, ["MOS-10", "MOS-10", "MOS-11"], strict=True):
            await link_mos(other, specimen("NHMD-5001", disposable=code), w.deps)
        entry = await w.h.store.mos.get(first.guid)
        assert entry is not None
        assert entry.connections == ()
        assert {(await w.h.store.mos.get(o.guid)).unique_label_id for o in others} == {  # type: ignore[union-attr]
            "test-workstation_2024-08-09_MOS-10", "test-workstation-2_2024-08-08_MOS-10",
            "test-workstation_2024-08-08_MOS-11",
        }  # fmt: skip


async def test_a_result_without_a_disposable_code_makes_no_mos_entry(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        asset = await w.asset(1)
        assert await link_mos(asset, specimen("NHMD-0001"), w.deps) == ""
        assert await w.h.store.mos.get(asset.guid) is None
        assert mos_entry(asset, BarcodeView(barcodes=[], MOS=True, disposable="  "), "2024-01-01") is None


async def test_writers_of_one_label_take_turns(tmp_path: Path) -> None:
    """Two specimens add their barcodes to the same label at the same moment (slow ARS: each read and write
    takes a while): both barcodes end on the label, neither write replaces the other."""
    async with world(tmp_path) as w:
        lab, s1, s2 = await w.asset(1), await w.asset(2), await w.asset(3)
        await link_mos(lab, label("MOS-12"), w.deps)
        await push_results(lab, results(label("MOS-12")), w.deps)
        await link_mos(s1, specimen("NHMD-6001", disposable="MOS-12"), w.deps)
        await link_mos(s2, specimen("NHMD-6002", disposable="MOS-12"), w.deps)
        w.emulator.update_faults({"latency_ms": 30})
        async with trio.open_nursery() as nursery:
            nursery.start_soon(push_results, s1, results(specimen("NHMD-6001", disposable="MOS-12")), w.deps)
            nursery.start_soon(push_results, s2, results(specimen("NHMD-6002", disposable="MOS-12")), w.deps)
        assert sorted(await w.specimens(lab.guid)) == ["NHMD-6001", "NHMD-6002"]
        assert await w.notes(lab.guid, "ars_race") == []
        assert len(w.deps.ars_records) == 0  # the per-record locks are gone once unused


async def test_what_is_wanted_is_asked_again_after_the_write(tmp_path: Path) -> None:
    """A MOS partner links while the label's update is under way: the update sees it on its second look and
    writes it too, instead of leaving it to nobody."""
    async with world(tmp_path) as w:
        asset = await w.asset(1)
        asked: list[int] = []

        async def wanted() -> Wanted:
            asked.append(1)
            return Wanted(specimens=("NHMD-7001",) if len(asked) == 1 else ("NHMD-7001", "NHMD-7002"))

        assert await update_record(asset, wanted, w.deps)
        assert await w.specimens(asset.guid) == ["NHMD-7001", "NHMD-7002"]


@pytest.mark.parametrize(
    "refusal",
    [
        ArsRejected("Asset is locked", status_code=403, guid="label"),
        GroupHeld("ARS refuses the preparation type 'sheet' for the label's collection", group_kind="collection"),
    ],
)
async def test_a_label_refusing_its_update_is_noted_and_neither_fails_nor_holds_the_specimen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, refusal: Exception
) -> None:
    async with world(tmp_path) as w:
        lab, s1 = await w.asset(1), await w.asset(2)
        await link_mos(lab, label("MOS-13"), w.deps)
        await link_mos(s1, specimen("NHMD-8001", disposable="MOS-13"), w.deps)
        real_update = w.deps.ars.update_asset

        async def refusing_label(guid: str, body: dict[str, Any]) -> None:
            if guid == lab.guid:
                raise refusal
            await real_update(guid, body)

        monkeypatch.setattr(w.deps.ars, "update_asset", refusing_label)
        await push_results(s1, results(specimen("NHMD-8001", disposable="MOS-13")), w.deps)
        assert await w.specimens(s1.guid) == ["NHMD-8001"]
        [on_label] = await w.notes(lab.guid, "mos")
        assert str(refusal) in on_label
        assert await w.notes(s1.guid, "mos")


async def test_a_rerun_with_another_result_moves_the_mos_link_and_drops_stale_tags(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        asset = await w.asset(1)
        view = BarcodeView(barcodes=["NHMD-9001"], asset_subject="specimen", MOS=True, disposable="MOS-14",
                           needs_review=True)  # fmt: skip
        await link_mos(asset, view, w.deps)
        await push_results(asset, results(view), w.deps)
        first = await w.document(asset.guid)
        assert first["mos_id"] == "test-workstation_2024-08-08_MOS-14"
        assert first["tags"]["barcode_needs_review"]
        again = specimen("NHMD-9001", disposable="MOS-15")  # an operator's retry read another disposable code
        await link_mos(asset, again, w.deps)
        await push_results(asset, results(again), w.deps)
        second = await w.document(asset.guid)
        assert second["mos_id"] == "test-workstation_2024-08-08_MOS-15"  # ours: replaced
        assert second["tags"]["disposable_id"] == "MOS-15"
        assert "barcode_needs_review" not in second["tags"]
        plain = specimen("NHMD-9001")
        assert await link_mos(asset, plain, w.deps) == "; no MOS code any more: unlinked"
        assert await w.h.store.mos.get(asset.guid) is None
        await push_results(asset, results(plain), w.deps)
        third = await w.document(asset.guid)
        assert "disposable_id" not in third["tags"]
        assert not third["mos_id"]  # the label id we wrote is cleared


async def test_a_curators_mos_id_stays_and_blank_codes_are_left_out(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        asset = await w.asset(1)
        document = await w.document(asset.guid)
        body = {key: value for key, value in document.items() if key in WRITABLE_FIELDS}
        await w.deps.ars.update_asset(asset.guid, {**body, "mos_id": "curated-7"})
        view = specimen(" NHMD-0009 ", "", "  ", disposable=" MOS-16 ")
        await link_mos(asset, view, w.deps)
        await push_results(asset, results(view), w.deps)
        after = await w.document(asset.guid)
        assert after["mos_id"] == "curated-7"
        assert await w.specimens(asset.guid) == ["NHMD-0009"]
        assert after["tags"]["disposable_id"] == "MOS-16"
