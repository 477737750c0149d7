"""Bad input never stops the daemon or the good assets: each bad item gets a plain reason next to it."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import trio

from daemon_support import ArsServer, make_config, start_daemon, wait_for_states, write_session
from integration.status import collect_status


def _break(folder: Path, guids: list[str]) -> dict[str, str]:
    """Damage assets of ``folder`` in different ways; returns name -> words the reason must contain."""
    expected: dict[str, str] = {}
    g = iter(guids)
    malformed = next(g)
    (folder / f"{malformed}.json").write_text("{not json", encoding="utf-8")
    expected[malformed] = "not valid JSON"
    missing_field = next(g)
    data = json.loads((folder / f"{missing_field}.json").read_text())
    del data["collection"]
    (folder / f"{missing_field}.json").write_text(json.dumps(data))
    expected[missing_field] = "collection"
    mismatch = next(g)
    data = json.loads((folder / f"{mismatch}.json").read_text())
    data["asset_guid"] = guids[-1]
    (folder / f"{mismatch}.json").write_text(json.dumps(data))
    expected[mismatch] = "asset_guid"
    no_image = next(g)
    (folder / f"{no_image}.tif").unlink()
    expected[no_image] = "No image file"
    no_json = next(g)
    (folder / f"{no_json}.json").unlink()
    expected[no_json] = "No metadata file"
    empty = next(g)
    (folder / f"{empty}.tif").write_bytes(b"")
    expected[empty] = "empty"
    wrong_format = next(g)
    (folder / f"{wrong_format}.tif").write_bytes(b"\xff\xd8\xff\xe0" + b"jpeg" * 100)
    expected[wrong_format] = "not a TIFF"
    unknown_pipeline = next(g)
    data = json.loads((folder / f"{unknown_pipeline}.json").read_text())
    data["pipeline_name"] = "PIPEUNKNOWN"
    (folder / f"{unknown_pipeline}.json").write_text(json.dumps(data))
    expected[unknown_pipeline] = "PIPEUNKNOWN"
    unknown_workstation = next(g)
    data = json.loads((folder / f"{unknown_workstation}.json").read_text())
    data["workstation_name"] = "WORKNOWHERE"
    (folder / f"{unknown_workstation}.json").write_text(json.dumps(data))
    expected[unknown_workstation] = "WORKNOWHERE"
    (folder / "not-a-guid.json").write_text("{}")
    (folder / "not-a-guid.tif").write_bytes(b"II*\x00" + b"\x00" * 100)
    expected["not-a-guid"] = "not a valid asset GUID"
    (folder / "bad..name.tif").write_bytes(b"II*\x00" + b"\x00" * 100)
    expected["bad..name.tif"] = ".."
    (folder / "ctrl\x07name.tif").write_bytes(b"II*\x00" + b"\x00" * 100)
    expected["ctrl\x07name.tif"] = "control character"
    outside = folder.parent.parent.parent.parent / "outside.tif"
    outside.write_bytes(b"II*\x00" + b"\x00" * 100)
    os.symlink(outside, folder / "escape.tif")
    expected["escape.tif"] = "outside the N-Drive"
    return expected


async def test_bad_assets_are_rejected_and_good_ones_sync(
    nursery: trio.Nursery, tmp_path: Path, ars: ArsServer
) -> None:
    """Every bad-input case is rejected with its reason in <name>.error.txt; the good assets reach synced."""
    guids = write_session(tmp_path, "test-workstation", "s1", 13, seed=5)
    folder = tmp_path / "ndrive" / "test-workstation" / "s1"
    expected = _break(folder, guids[:9])
    good = guids[9:]
    config = make_config(tmp_path, ars.port)
    daemon = await start_daemon(nursery, config)
    await wait_for_states(daemon, {"synced": len(good)})
    imported = tmp_path / "ndrive" / "test-workstation" / "imported_s1"
    with trio.fail_after(10):
        while not imported.exists():
            await trio.sleep(0.05)
    report = collect_status(config)
    reasons = {item.name: item.reason for item in report.attention}
    for name, words in expected.items():
        assert words in reasons[name], (name, reasons.get(name))
        safe = "".join(c if c.isprintable() and c not in "/\\" else "_" for c in name)
        note = imported / f"{safe}.error.txt"
        assert note.exists(), note
        assert words in " ".join(note.read_text(encoding="utf-8").split())
    assert sorted(ars.emulator.stats().creates_committed_by_guid) == sorted(good)
    for path in folder.parent.glob("imported_s1/*"):
        assert path.exists()  # nothing deleted from the N-Drive


async def test_same_guid_in_two_sessions_is_rejected_once(
    nursery: trio.Nursery, tmp_path: Path, ars: ArsServer
) -> None:
    """A GUID already imported from one session is rejected in the second, which is left untouched."""
    guids = write_session(tmp_path, "test-workstation", "s1", 2, seed=6)
    config = make_config(tmp_path, ars.port)
    daemon = await start_daemon(nursery, config)
    await wait_for_states(daemon, {"synced": 2})
    copy = tmp_path / "ndrive" / "test-workstation" / "s2"
    shutil.copytree(tmp_path / "ndrive" / "test-workstation" / "imported_s1", copy)
    with trio.fail_after(10):
        while not (tmp_path / "ndrive" / "test-workstation" / "imported_s2").exists():
            await trio.sleep(0.05)
    report = collect_status(config)
    duplicates = [i for i in report.attention if "already imported" in i.reason]
    assert sorted(i.name for i in duplicates) == sorted(guids)
    assert ars.emulator.stats().creates_committed == 2


async def test_session_still_being_written_waits_and_late_files_are_not_lost(
    nursery: trio.Nursery, tmp_path: Path, ars: ArsServer
) -> None:
    """A folder that keeps changing is not imported; files added late are imported with the rest."""
    config = make_config(tmp_path, ars.port, ndrive={"settle_s": 1.0})
    daemon = await start_daemon(nursery, config)
    guids = []
    for i in range(6):  # one new asset every 0.3 s: never stable for 1 s
        guids += write_session(tmp_path, "test-workstation", "s1", 1, seed=100 + i)
        await trio.sleep(0.3)
        assert await daemon.store.assets.counts_by_state() == {}
    await wait_for_states(daemon, {"synced": 6})
    assert sorted(ars.emulator.stats().creates_committed_by_guid) == sorted(guids)
