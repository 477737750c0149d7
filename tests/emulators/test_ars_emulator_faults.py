"""Fault injection and the /_emulator control routes of the ARS emulator."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
import trio

from emulators.ars_support import ARS, FP, Ars, open_ars
from integration.emulators.ars import EmulatorSettings, FaultSettings, load_settings
from integration.errors import ConfigError

GUID = "asset-0001"


async def test_error_rate_one_answers_503_to_api_calls_only(ars: Ars) -> None:
    """error_rate=1 makes every ARS/FP call 503 while the token endpoint and /_emulator keep working."""
    ars.emulator.update_faults({"error_rate": 1.0})
    assert (await ars.client.get(f"{ARS}/institutions")).status_code == 503
    assert (await ars.client.get(f"{FP}/assets/x/files")).status_code == 503
    assert (await ars.create(GUID)).status_code == 503
    assert ars.emulator.stats().create_requests == 0
    form = {"grant_type": "client_credentials", "client_id": "integration", "client_secret": "integration-secret"}
    assert (
        await ars.client.post("/keycloak/realms/dassco/protocol/openid-connect/token", data=form)
    ).status_code == 200


async def test_error_rate_draws_are_seeded(settings: EmulatorSettings) -> None:
    """The same seed gives the same sequence of 503s."""
    outcomes = []
    for _ in range(2):
        faulty = msgspec.structs.replace(settings, seed=7, faults=FaultSettings(error_rate=0.5))
        async with open_ars(faulty) as ars:
            outcomes.append([(await ars.client.get(f"{ARS}/institutions")).status_code for _ in range(20)])
    assert outcomes[0] == outcomes[1]
    assert {200, 503} == set(outcomes[0])


async def test_down_answers_503_everywhere_but_control(ars: Ars) -> None:
    """down=True makes even the token endpoint and health check 503; /_emulator/faults turns it off."""
    reply = await ars.client.put("/_emulator/faults", json={"down": True})
    assert reply.json()["down"] is True
    assert (await ars.client.get("/ars/actuator/health")).status_code == 503
    assert (await ars.client.post("/keycloak/realms/dassco/protocol/openid-connect/token")).status_code == 503
    await ars.client.put("/_emulator/faults", json={"down": False})
    assert (await ars.client.get("/ars/actuator/health")).status_code == 200


async def test_drop_reply_after_create_commits_but_answers_504(ars: Ars) -> None:
    """The next create is stored but answered 504; a retry then sees "already exists"."""
    ars.emulator.update_faults({"drop_reply_after_create": 1})
    assert (await ars.create(GUID)).status_code == 504
    assert (await ars.status(GUID)).json()["status"] == "METADATA_RECEIVED"
    retry = await ars.create(GUID)
    assert (retry.status_code, retry.json()["errorMessage"]) == (400, f"Asset {GUID} already exists")
    assert ars.emulator.stats().creates_committed_by_guid == {GUID: 1}
    assert (await ars.create("asset-0002")).status_code == 200


async def test_latency_is_added_with_trio_sleep(ars: Ars, autojump_clock: trio.testing.MockClock) -> None:
    """latency_ms delays each request by that much virtual time."""
    ars.emulator.update_faults({"latency_ms": 250})
    start = trio.current_time()
    await ars.client.get(f"{ARS}/institutions")
    assert trio.current_time() - start == pytest.approx(0.25)


async def test_timeout_rate_hangs_then_504s_without_acting(ars: Ars, autojump_clock: trio.testing.MockClock) -> None:
    """timeout_rate=1 hangs timeout_hang_s and answers 504 without creating anything."""
    ars.emulator.update_faults({"timeout_rate": 1.0, "timeout_hang_s": 30})
    start = trio.current_time()
    assert (await ars.create(GUID)).status_code == 504
    assert trio.current_time() - start == pytest.approx(30)
    assert ars.emulator.stats().create_requests == 0


async def test_state_and_fault_validation(ars: Ars) -> None:
    """GET /_emulator/state shows faults and counters; bad fault changes are refused with 400."""
    await ars.create(GUID)
    state = (await ars.client.get("/_emulator/state")).json()
    assert state["faults"] == msgspec.to_builtins(FaultSettings())
    assert state["stats"]["creates_committed"] == 1
    assert state["stats"]["token_requests"] == 1
    assert state["stats"]["requests_total"] == 2
    assert (state["assets"], state["open_shares"]) == (1, 1)
    assert (await ars.client.put("/_emulator/faults", json={"error_rate": 2})).status_code == 400
    assert (await ars.client.put("/_emulator/faults", json={"nope": 1})).status_code == 400
    with pytest.raises(ConfigError):
        ars.emulator.update_faults({"erda_fail_next": -1})


def test_load_settings_from_toml_with_overrides(tmp_path: Path) -> None:
    """A TOML file sets fields and institutions; overrides win; None overrides change nothing."""
    path = tmp_path / "ars.toml"
    path.write_text(
        'client_id = "pipe"\nsync_tick_s = 5.0\n'
        '[institutions.NHMD]\ncollections = ["Vascular plants"]\npipelines = ["PIPEHERB0001"]\n'
        'workstations = ["WORKHERB0001"]\n[faults]\nlatency_ms = 10\n'
    )
    settings = load_settings(
        path, overrides={"sync_tick_s": 0.5, "client_secret": None}, fault_overrides={"error_rate": 0.1}
    )
    assert (settings.client_id, settings.client_secret, settings.sync_tick_s) == ("pipe", "integration-secret", 0.5)
    assert settings.institutions["NHMD"].pipelines == ("PIPEHERB0001",)
    assert (settings.faults.latency_ms, settings.faults.error_rate) == (10, 0.1)
    path.write_text("unknown_key = 1\n")
    with pytest.raises(ConfigError, match="unknown_key"):
        load_settings(path)
    with pytest.raises(ConfigError):
        load_settings(tmp_path / "missing.toml")


async def test_more_institutions_from_settings(settings: EmulatorSettings) -> None:
    """Institutions configured in settings accept assets against their own reference data."""
    from integration.emulators.ars import InstitutionSettings

    seeded = msgspec.structs.replace(
        settings,
        institutions={"NHMD": InstitutionSettings(collections=("c",), pipelines=("p",), workstations=("w",))},
    )
    async with open_ars(seeded) as ars:
        reply = await ars.create(GUID, institution="NHMD", collection="c", pipeline="p", workstation="w")
        assert reply.status_code == 200
        assert (await ars.create("x", pipeline="test-pipeline")).status_code == 403


async def test_disk_full_reports_no_remaining_storage(ars: Ars) -> None:
    """With disk_full, create, createShare and changeAllocation report DISK_FULL with remaining_storage_mb 0."""
    await ars.create(GUID)
    ars.emulator.update_faults({"disk_full": True})
    created = (await ars.create("asset-0002")).json()["httpInfo"]
    assert (created["http_allocation_status"], created["remaining_storage_mb"]) == ("DISK_FULL", 0)
    body = {"asset_guid": GUID, "new_allocation_mb": 20}
    grown = (await ars.client.post(f"{FP}/shares/assets/{GUID}/changeAllocation", json=body)).json()
    assert (grown["http_allocation_status"], grown["remaining_storage_mb"]) == ("DISK_FULL", 0)
    await ars.delete_share(GUID)
    reopened = (await ars.open_share(GUID)).json()
    assert (reopened["http_allocation_status"], reopened["remaining_storage_mb"]) == ("DISK_FULL", 0)


async def test_allocation_beyond_what_is_left_reports_the_true_remainder(settings: EmulatorSettings) -> None:
    """Without the fault, an allocation above what is left is DISK_FULL with the true remaining_storage_mb."""
    async with open_ars(msgspec.structs.replace(settings, total_storage_mb=100)) as ars:
        await ars.create(GUID, allocation_mb=60)
        created = (await ars.create("asset-0002", allocation_mb=50)).json()["httpInfo"]
        assert (created["http_allocation_status"], created["remaining_storage_mb"]) == ("DISK_FULL", 40)
        body = {"asset_guid": GUID, "new_allocation_mb": 120}
        grown = (await ars.client.post(f"{FP}/shares/assets/{GUID}/changeAllocation", json=body)).json()
        assert (grown["http_allocation_status"], grown["remaining_storage_mb"]) == ("DISK_FULL", 40)
        assert (await ars.create("asset-0002", allocation_mb=40)).status_code == 200


async def test_late_create_commit_answers_after_the_wait(ars: Ars, autojump_clock: trio.testing.MockClock) -> None:
    """During a late commit the GUID is unknown (404) and blocked (403); afterwards it exists (400 on a retry)."""
    ars.emulator.update_faults({"late_create_commit_next": 1, "late_create_commit_s": 5})
    replies: list[int] = []

    async def slow_create() -> None:
        replies.append((await ars.create(GUID)).status_code)

    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(slow_create)
        await trio.sleep(1)
        assert (await ars.status(GUID)).status_code == 404
        blocked = await ars.create(GUID)
        assert (blocked.status_code, blocked.json()["errorMessage"]) == (
            403,
            f"Asset {GUID} is already being processed",
        )
    assert replies == [200]
    assert trio.current_time() - start == pytest.approx(5)
    assert (await ars.status(GUID)).json()["status"] == "METADATA_RECEIVED"
    retry = await ars.create(GUID)
    assert (retry.status_code, retry.json()["errorMessage"]) == (400, f"Asset {GUID} already exists")
    assert ars.emulator.faults.late_create_commit_next == 0
    before = trio.current_time()
    assert (await ars.create("asset-0002")).status_code == 200
    assert trio.current_time() == before


async def test_late_create_commit_happens_after_the_client_gave_up(
    ars: Ars, autojump_clock: trio.testing.MockClock
) -> None:
    """A client that times out during a late commit gets no answer, yet the asset is stored afterwards."""
    ars.emulator.update_faults({"late_create_commit_next": 1})
    start = trio.current_time()
    with trio.move_on_after(1) as timeout:
        await ars.create(GUID)
    assert timeout.cancelled_caught
    assert trio.current_time() - start == pytest.approx(5)
    assert (await ars.status(GUID)).json()["status"] == "METADATA_RECEIVED"
    assert ars.emulator.stats().creates_committed_by_guid == {GUID: 1}


async def test_late_create_commit_skips_creates_that_fail(ars: Ars, autojump_clock: trio.testing.MockClock) -> None:
    """A create refused anyway (DISK_FULL) neither waits nor uses up the late_create_commit_next count."""
    ars.emulator.update_faults({"late_create_commit_next": 1, "disk_full": True})
    start = trio.current_time()
    assert (await ars.create(GUID)).status_code == 403
    assert trio.current_time() == start
    assert ars.emulator.faults.late_create_commit_next == 1
