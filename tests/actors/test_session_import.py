"""Importing one settled session: the rename is recorded durably, late arrivals are never lost, and a corrected
re-delivery replaces a quarantined asset instead of being refused as a duplicate."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import trio

from actor_support import Harness, harness
from daemon_support import write_session
from integration.actors import _session_import, _watcher
from integration.actors._intake_support import WatcherStatistics, entries_of, relevant
from integration.actors._session_import import SessionImporter
from integration.adapters.files import CopyMismatch
from integration.adapters.ndrive import snapshot_session
from integration.errors import NdriveUnavailable, TransientError
from integration.state_machines import AssetState, AssetTrigger

WS = "test-workstation"


def importer(h: Harness) -> SessionImporter:
    assert h.dispatcher is not None
    return SessionImporter(
        store=h.store,
        config=h.config,
        dispatcher=h.dispatcher,
        copy_limiter=trio.CapacityLimiter(2),
        ndrive_limiter=trio.CapacityLimiter(4),
        stats=WatcherStatistics(),
    )


async def import_once(h: Harness, folder: Path) -> bool:
    """Import ``folder`` as the watcher would once it settled."""
    snapshot = relevant(await trio.to_thread.run_sync(snapshot_session, folder))
    return await importer(h).import_session(folder, WS, snapshot)


async def test_ndrive_paths_follow_the_rename_including_a_suffix(tmp_path: Path) -> None:
    """After the `imported_` rename (here `imported_s1_2`, the first name being taken) the store has the new paths."""
    guids = write_session(tmp_path, WS, "s1", 2, seed=1)
    (tmp_path / "ndrive" / WS / "imported_s1").mkdir()
    async with harness(tmp_path) as h:
        assert await import_once(h, tmp_path / "ndrive" / WS / "s1")
        target = tmp_path / "ndrive" / WS / "imported_s1_2"
        for guid in guids:
            for stored in await h.store.assets.files(guid):
                assert stored.ndrive_path == str(target / stored.record.name)
                assert Path(stored.ndrive_path).exists()
        session = await h.store.intake.session(str(tmp_path / "ndrive" / WS / "s1"))
        assert session is not None
        assert session.imported_path == str(target)


async def test_the_records_are_durable_before_the_rename_is_attempted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When the folder is renamed, the assets and the rename target are already committed (synchronous=FULL)."""
    guids = write_session(tmp_path, WS, "s1", 2, seed=2)
    folder = tmp_path / "ndrive" / WS / "s1"
    seen: dict[str, Any] = {}
    real_rename = _session_import.rename_session

    def rename(session: Path, target: Path) -> None:
        with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as other:
            seen["assets"] = sorted(r[0] for r in other.execute("SELECT guid FROM assets"))
            seen["intent"] = other.execute(
                "SELECT detail FROM intents WHERE entity_kind = 'session' AND operation = 'rename'"
            ).fetchall()
        real_rename(session, target)

    monkeypatch.setattr(_session_import, "rename_session", rename)
    async with harness(tmp_path) as h:
        database = Path(h.config.storage.database)
        assert await h.store.run(lambda c: c.execute("PRAGMA synchronous").fetchone()[0]) == 2
        assert await import_once(h, folder)
    assert seen["assets"] == sorted(guids)
    assert seen["intent"] == [(str(folder.parent / "imported_s1"),)]


async def test_a_late_sibling_joins_its_asset_while_nothing_went_to_ars(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A raw file landing between the last look and the rename is added to its still-ingested asset."""
    [guid] = write_session(tmp_path, WS, "s1", 1, seed=3)
    folder = tmp_path / "ndrive" / WS / "s1"
    real_rename = _session_import.rename_session

    def rename(session: Path, target: Path) -> None:
        (session / f"{guid}.dng").write_bytes(b"II*\x00" + b"raw" * 100)  # arrives in the last moment
        real_rename(session, target)

    monkeypatch.setattr(_session_import, "rename_session", rename)
    async with harness(tmp_path) as h:
        assert await import_once(h, folder)
        files = {f.record.name: f for f in await h.store.assets.files(guid)}
        assert set(files) == {f"{guid}.json", f"{guid}.tif", f"{guid}.dng"}
        assert Path(files[f"{guid}.dng"].record.local_path).read_bytes().startswith(b"II*\x00raw")
        assert files[f"{guid}.dng"].ndrive_path.endswith(f"imported_s1/{guid}.dng")
        assert "file_added" in [e.trigger for e in await h.store.assets.events(guid)]


async def test_a_late_sibling_of_an_asset_on_its_way_to_ars_is_rejected_with_a_note(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the asset's create already started, the late file is not added but rejected with a note by it."""
    [guid] = write_session(tmp_path, WS, "s1", 1, seed=4)
    folder = tmp_path / "ndrive" / WS / "s1"
    real_rename = _session_import.rename_session
    state: dict[str, Harness] = {}

    def rename(session: Path, target: Path) -> None:
        (session / f"{guid}.dng").write_bytes(b"II*\x00" + b"raw" * 100)
        real_rename(session, target)

    monkeypatch.setattr(_session_import, "rename_session", rename)
    async with harness(tmp_path) as h:
        state["h"] = h

        async def started(*args: Any, **kwargs: Any) -> None:  # the actor opened its create intent meanwhile
            await h.store.assets.open_intent(guid, "create", expected=AssetState.INGESTED, actor="asset-actor")

        real_late = importer(h)._late_arrivals

        async def late(session: Path, target: Path, planned: Any) -> set[str]:
            await started()
            return await real_late(session, target, planned)

        monkeypatch.setattr(SessionImporter, "_late_arrivals", lambda self, *a: late(*a))
        assert await import_once(h, folder)
        assert {f.record.name for f in await h.store.assets.files(guid)} == {f"{guid}.json", f"{guid}.tif"}
        [rejection] = await h.store.intake.rejections()
        assert rejection.name == f"{guid}.dng"
        assert "already on its way to ARS" in rejection.reason
        assert (folder.parent / "imported_s1" / f"{guid}.dng.error.txt").exists()


async def test_a_whole_late_asset_is_imported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An asset whose files all land in the last moment is imported from the renamed folder, not lost."""
    write_session(tmp_path, WS, "s1", 1, seed=5)
    folder = tmp_path / "ndrive" / WS / "s1"
    real_rename = _session_import.rename_session
    late: list[str] = []

    def rename(session: Path, target: Path) -> None:
        late.extend(write_session(tmp_path, WS, "s1", 1, seed=6))
        real_rename(session, target)

    monkeypatch.setattr(_session_import, "rename_session", rename)
    async with harness(tmp_path) as h:
        assert await import_once(h, folder)
        record = await h.store.assets.get(late[0])
        assert record is not None
        assert record.state is AssetState.INGESTED
        [tif] = [f for f in await h.store.assets.files(late[0]) if f.record.name.endswith(".tif")]
        assert tif.ndrive_path.endswith(f"imported_s1/{late[0]}.tif")
        await trio.sleep(0.1)
        assert late[0] in h.driven


async def test_a_corrected_redelivery_replaces_a_quarantined_asset(tmp_path: Path) -> None:
    """Fixed files of a quarantined GUID in a new session replace its files and metadata, with an event."""
    [guid] = write_session(tmp_path, WS, "s1", 1, seed=7)
    async with harness(tmp_path) as h:
        assert await import_once(h, tmp_path / "ndrive" / WS / "s1")
        await h.store.assets.transition(
            guid, AssetTrigger.QUARANTINE, expected=AssetState.INGESTED, reason="ARS refused the metadata", actor="t"
        )
        fixed = tmp_path / "ndrive" / WS / "s2"
        fixed.mkdir()
        for source in (tmp_path / "ndrive" / WS / "imported_s1").iterdir():
            (fixed / source.name).write_bytes(source.read_bytes())
        metadata = json.loads((fixed / f"{guid}.json").read_text())
        metadata["digitiser"] = "corrected"
        (fixed / f"{guid}.json").write_text(json.dumps(metadata))
        h.driven.clear()
        assert await import_once(h, fixed)
        record = await h.store.assets.get(guid)
        assert record is not None
        assert record.state is AssetState.INGESTED
        assert record.session == str(fixed)
        assert b"corrected" in (await h.store.assets.metadata_json(guid) or b"")
        assert "redeliver" in [e.trigger for e in await h.store.assets.events(guid)]
        assert await h.store.intake.rejections() == []
        await trio.sleep(0.1)
        assert h.driven == [guid]


async def test_a_second_copy_of_an_asset_in_progress_is_still_a_duplicate(tmp_path: Path) -> None:
    """A GUID that is not quarantined or failed is refused in a second session, which is left untouched."""
    [guid] = write_session(tmp_path, WS, "s1", 1, seed=8)
    async with harness(tmp_path) as h:
        assert await import_once(h, tmp_path / "ndrive" / WS / "s1")
        second = tmp_path / "ndrive" / WS / "s2"
        second.mkdir()
        for source in (tmp_path / "ndrive" / WS / "imported_s1").iterdir():
            (second / source.name).write_bytes(source.read_bytes())
        assert await import_once(h, second)
        [rejection] = await h.store.intake.rejections()
        assert rejection.guid == guid
        assert "already imported" in rejection.reason


@pytest.mark.parametrize("happened", [True, False])
async def test_an_interrupted_rename_is_settled_at_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, happened: bool
) -> None:
    """A crash between the rename intent and its record is settled: recorded if it happened, else forgotten."""
    write_session(tmp_path, WS, "s1", 1, seed=9)
    folder = tmp_path / "ndrive" / WS / "s1"
    target = folder.parent / "imported_s1"
    async with harness(tmp_path) as h:
        await h.store.intake.start_rename(str(folder), str(target), actor="crashed")
        if happened:
            folder.rename(target)
        watcher = _watcher._Watcher(importer(h), h.lanes, {})
        await watcher.settle_renames()
        assert await h.store.intake.pending_renames() == {}
        session = await h.store.intake.session(str(folder))
        if happened:
            assert session is not None
            assert session.imported_path == str(target)
        else:
            assert session is None
            assert folder.is_dir()


@pytest.mark.parametrize("moved_on", [False, True])
async def test_a_file_that_came_before_a_crash_is_not_lost_at_the_next_import(tmp_path: Path, moved_on: bool) -> None:
    """Recorded before a crash without its late raw file: the next import adds it, or rejects it with a note."""
    [guid] = write_session(tmp_path, WS, "s1", 1, seed=10)
    folder = tmp_path / "ndrive" / WS / "s1"
    async with harness(tmp_path) as h:
        snapshot = relevant(await trio.to_thread.run_sync(snapshot_session, folder))
        plan = await trio.to_thread.run_sync(_session_import.plan_session, folder, importer(h).rules)
        outcomes = await importer(h)._ingest_all(  # the first import got this far, then the daemon died
            folder, plan.candidates, where=folder, entries=entries_of(snapshot)
        )
        assert outcomes == ["ingested"]
        if moved_on:
            await h.store.assets.open_intent(guid, "create", expected=AssetState.INGESTED, actor="asset-actor")
        (folder / f"{guid}.dng").write_bytes(b"II*\x00" + b"raw" * 50)  # written while the daemon was down
        assert await import_once(h, folder)
        names = {f.record.name for f in await h.store.assets.files(guid)}
        if moved_on:
            assert f"{guid}.dng" not in names
            [rejection] = await h.store.intake.rejections()
            assert rejection.name == f"{guid}.dng"
            assert (folder.parent / "imported_s1" / f"{guid}.dng.error.txt").exists()
        else:
            assert f"{guid}.dng" in names


async def test_a_file_rewritten_with_the_same_size_is_taken_in_anew(tmp_path: Path) -> None:
    """A file rewritten in place while the daemon was down (same size, new bytes and mtime) replaces the
    recorded copy while nothing went to ARS: its mtime tells it apart, not its size."""
    [guid] = write_session(tmp_path, WS, "s1", 1, seed=11)
    folder = tmp_path / "ndrive" / WS / "s1"
    async with harness(tmp_path) as h:
        snapshot = relevant(await trio.to_thread.run_sync(snapshot_session, folder))
        plan = await trio.to_thread.run_sync(_session_import.plan_session, folder, importer(h).rules)
        assert await importer(h)._ingest_all(folder, plan.candidates, where=folder, entries=entries_of(snapshot)) == [
            "ingested"
        ]
        tif = folder / f"{guid}.tif"
        [before] = [f.record for f in await h.store.assets.files(guid) if f.record.name == tif.name]
        data = bytearray(tif.read_bytes())
        data[-1] ^= 0xFF
        tif.write_bytes(bytes(data))
        os.utime(tif, ns=(before.mtime_ns or 0, (before.mtime_ns or 0) + 5_000_000_000))
        assert await import_once(h, folder)
        [after] = [f.record for f in await h.store.assets.files(guid) if f.record.name == tif.name]
        assert after.size == before.size
        assert after.crc32 != before.crc32
        assert Path(after.local_path).read_bytes() == bytes(data)
        assert "file_added" in [e.trigger for e in await h.store.assets.events(guid)]


async def test_a_late_metadata_json_replaces_the_recorded_metadata(tmp_path: Path) -> None:
    """A corrected JSON landing before anything went to ARS replaces the metadata and the columns it sets."""
    [guid] = write_session(tmp_path, WS, "s1", 1, seed=12)
    folder = tmp_path / "ndrive" / WS / "s1"
    async with harness(tmp_path) as h:
        snapshot = relevant(await trio.to_thread.run_sync(snapshot_session, folder))
        plan = await trio.to_thread.run_sync(_session_import.plan_session, folder, importer(h).rules)
        await importer(h)._ingest_all(folder, plan.candidates, where=folder, entries=entries_of(snapshot))
        metadata = json.loads((folder / f"{guid}.json").read_text())
        metadata["collection"] = "corrected-collection"
        (folder / f"{guid}.json").write_text(json.dumps(metadata))
        assert await import_once(h, folder)
        record = await h.store.assets.get(guid)
        assert record is not None
        assert record.collection == "corrected-collection"
        assert b"corrected-collection" in (await h.store.assets.metadata_json(guid) or b"")
        [note] = [e for e in await h.store.assets.events(guid) if e.trigger == "file_added"]
        assert "its metadata replaces the recorded one" in note.reason


async def test_a_late_file_still_being_written_after_the_rename_is_rejected_with_a_note(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file that keeps changing while it is copied (still being written) is looked at a few settle windows
    long, then rejected with a note next to it — never dropped silently."""
    [guid] = write_session(tmp_path, WS, "s1", 1, seed=13)
    folder = tmp_path / "ndrive" / WS / "s1"
    real_rename = _session_import.rename_session
    real_copy = _session_import.copy_with_crc
    copies: list[str] = []

    def rename(session: Path, target: Path) -> None:
        (session / f"{guid}.dng").write_bytes(b"II*\x00" + b"raw" * 100)
        real_rename(session, target)

    def copy(src: Path, dst: Path) -> Any:
        if src.name.endswith(".dng"):
            copies.append(src.name)
            raise CopyMismatch(f"{src} changed while it was copied", path=str(src))
        return real_copy(src, dst)

    monkeypatch.setattr(_session_import, "rename_session", rename)
    monkeypatch.setattr(_session_import, "copy_with_crc", copy)
    async with harness(tmp_path, ndrive={"settle_s": 0.05}) as h:
        assert await import_once(h, folder)
        assert len(copies) == _session_import._LATE_ROUNDS
        [rejection] = await h.store.intake.rejections()
        assert rejection.name == f"{guid}.dng"
        assert "still being written" in rejection.reason
        assert (folder.parent / "imported_s1" / f"{guid}.dng.error.txt").exists()
        assert await h.store.intake.pending_relists() == {}


async def test_a_folder_where_no_note_can_be_written_still_imports_its_good_assets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read-only folder (notes fail): the rejection is recorded for `integration status`, the good asset is
    imported and the folder renamed."""
    [good] = write_session(tmp_path, WS, "s1", 1, seed=14)
    folder = tmp_path / "ndrive" / WS / "s1"
    (folder / "stray.xyz").write_bytes(b"what is this")

    def read_only(*args: Any) -> None:
        raise TransientError("Read-only file system")

    monkeypatch.setattr(_session_import, "write_error_note", read_only)
    async with harness(tmp_path) as h:
        assert await import_once(h, folder)
        assert await h.store.assets.get(good) is not None
        [rejection] = await h.store.intake.rejections()
        assert rejection.name == "stray.xyz"
        assert (folder.parent / "imported_s1").is_dir()


async def test_a_look_at_the_renamed_folder_cut_short_by_a_crash_is_done_at_the_next_start(tmp_path: Path) -> None:
    """Renamed and recorded, then the daemon died before looking at the renamed folder again: the next start
    does it (a file that slipped in is taken in) and settles the look."""
    [guid] = write_session(tmp_path, WS, "s1", 1, seed=15)
    folder = tmp_path / "ndrive" / WS / "s1"
    target = folder.parent / "imported_s1"
    async with harness(tmp_path) as h:
        snapshot = relevant(await trio.to_thread.run_sync(snapshot_session, folder))
        plan = await trio.to_thread.run_sync(_session_import.plan_session, folder, importer(h).rules)
        await importer(h)._ingest_all(folder, plan.candidates, where=folder, entries=entries_of(snapshot))
        await h.store.intake.start_rename(str(folder), str(target), actor="crashed")
        folder.rename(target)
        await h.store.intake.finish_rename(str(folder), str(target), workstation=WS, assets=1, rejected=0, actor="x")
        (target / f"{guid}.dng").write_bytes(b"II*\x00" + b"raw" * 40)  # slipped in during the rename
        assert await h.store.intake.pending_relists() == {str(folder): str(target)}
        watcher = _watcher._Watcher(importer(h), h.lanes, {})
        await watcher.settle_renames()
        assert f"{guid}.dng" in {f.record.name for f in await h.store.assets.files(guid)}
        assert await h.store.intake.pending_relists() == {}
        assert await h.store.intake.rejections() == []


@pytest.mark.parametrize("twice", [False, True])
async def test_where_the_first_release_renamed_a_session_is_found_again(tmp_path: Path, twice: bool) -> None:
    """A session the first release imported and renamed without recording where: at start the watcher finds
    the one `imported_` folder holding its files and points the N-Drive paths there; with two candidates it
    changes nothing."""
    [guid] = write_session(tmp_path, WS, "s1", 1, seed=16)
    folder = tmp_path / "ndrive" / WS / "s1"
    async with harness(tmp_path) as h:
        snapshot = relevant(await trio.to_thread.run_sync(snapshot_session, folder))
        plan = await trio.to_thread.run_sync(_session_import.plan_session, folder, importer(h).rules)
        await importer(h)._ingest_all(folder, plan.candidates, where=folder, entries=entries_of(snapshot))
        await h.store.intake.record_session(str(folder), workstation=WS, status="imported", assets=1, rejected=0)
        (folder.parent / "imported_s1").mkdir()  # taken when the first release renamed it: hence the suffix
        folder.rename(folder.parent / "imported_s1_2")
        if twice:
            copy = folder.parent / "imported_s1_3"
            copy.mkdir()
            for source in (folder.parent / "imported_s1_2").iterdir():
                (copy / source.name).write_bytes(source.read_bytes())
        watcher = _watcher._Watcher(importer(h), h.lanes, {})
        await watcher.locate_earlier_renames()
        paths = {Path(f.ndrive_path) for f in await h.store.assets.files(guid)}
        session = await h.store.intake.session(str(folder))
        assert session is not None
        if twice:
            assert {p.parent for p in paths} == {folder}
            assert session.imported_path is None
        else:
            assert {p.parent for p in paths} == {folder.parent / "imported_s1_2"}
            assert all(p.exists() for p in paths)
            assert session.imported_path == str(folder.parent / "imported_s1_2")
            assert await h.store.intake.unlocated_sessions() == {}


async def test_a_look_after_a_crash_leaves_a_duplicate_copy_alone(tmp_path: Path) -> None:
    """Made up after a crash (the plan is lost), the look at a renamed folder must not import the copy of an
    asset recorded from another session (rejected as a duplicate before), even when that asset now waits for
    a human (a re-delivery would replace its files)."""
    [guid] = write_session(tmp_path, WS, "s1", 1, seed=17)
    first = tmp_path / "ndrive" / WS / "s1"
    async with harness(tmp_path) as h:
        assert await import_once(h, first)
        copy = tmp_path / "ndrive" / WS / "imported_s2"
        copy.mkdir()
        for source in (first.parent / "imported_s1").iterdir():
            (copy / source.name).write_bytes(source.read_bytes())
        await h.store.assets.transition(
            guid, AssetTrigger.QUARANTINE, expected=AssetState.INGESTED, reason="bad", actor="t"
        )
        await importer(h).relist(first.parent / "s2", copy, None)
        record = await h.store.assets.get(guid)
        assert record is not None
        assert record.state is AssetState.QUARANTINED
        assert record.session == str(first)


async def test_a_copy_records_the_mtime_the_file_had_when_copied(tmp_path: Path) -> None:
    """The recorded mtime is the one the copy saw, not the (older) one of the folder's snapshot: a file rewritten
    between the two is not later taken for a late change."""
    [guid] = write_session(tmp_path, WS, "s1", 1, seed=18)
    folder = tmp_path / "ndrive" / WS / "s1"
    async with harness(tmp_path) as h:
        snapshot = relevant(await trio.to_thread.run_sync(snapshot_session, folder))
        tif = folder / f"{guid}.tif"
        os.utime(tif, ns=(tif.stat().st_atime_ns, tif.stat().st_mtime_ns + 7_000_000_000))  # rewritten meanwhile
        plan = await trio.to_thread.run_sync(_session_import.plan_session, folder, importer(h).rules)
        await importer(h)._ingest_all(folder, plan.candidates, where=folder, entries=entries_of(snapshot))
        [stored] = [f.record for f in await h.store.assets.files(guid) if f.record.name == tif.name]
        assert stored.mtime_ns == tif.stat().st_mtime_ns
        assert await import_once(h, folder)
        assert "file_added" not in [e.trigger for e in await h.store.assets.events(guid)]


async def test_looking_for_an_earlier_rename_that_fails_in_one_folder_stops_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An I/O error looking for one old session's renamed folder, while the N-Drive answers: that session's
    failure only — the intake does not pause, and the look is not repeated at every reopening."""
    write_session(tmp_path, WS, "s1", 1, seed=19)
    folder = tmp_path / "ndrive" / WS / "s1"

    def failing(*args: Any) -> None:
        raise NdriveUnavailable("EIO on one folder", path=str(folder))

    async def answers() -> None:
        return None

    monkeypatch.setattr(_watcher, "find_imported_folder", failing)
    async with harness(tmp_path) as h:
        await import_once(h, folder)
        await h.store.run(lambda c: c.execute("UPDATE sessions SET imported_path = NULL"))
        watcher = _watcher._Watcher(importer(h), h.lanes, {"intake": answers})
        await watcher.locate_earlier_renames()
        assert not h.lanes.intake.paused
        assert watcher.located
        assert watcher.failures == {("locate", folder): 1}
