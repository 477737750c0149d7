"""``integration demo``: the whole system on embedded defaults, with live progress.

Generates specimens in session folders for two workstations, writes a configuration, starts the ARS emulator
and the daemon in this process (emulator over real HTTP on 127.0.0.1), shows the assets moving through their
states, and exits 0 once every asset is ``finalized`` — synced to ERDA, processed by the pipeline's jobs on the local
executor (barcodes, OCR, derivatives as child assets), its copies deleted — and 1 if any needs a human or the
time limit is reached. It ends with what each asset's jobs found and where everything went.
"""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import tomli_w
import trio
from rich.console import Console
from rich.live import Live
from rich.table import Table

from integration.actors import Daemon, run_daemon
from integration.config import Config, load_config
from integration.demo._outcomes import collect_outcomes, print_outcomes
from integration.demo._specimens import SpecimenSpec, generate_session
from integration.emulators.ars import EmulatorSettings, InstitutionSettings, serve_ars_emulator
from integration.log_setup import configure_logging
from integration.state_machines import DRIVERS, AssetState, Driver
from integration.status import collect_status, render_status

__all__ = ["DEMO_WORKSTATIONS", "demo_config", "demo_emulator_settings", "run_demo"]

DEMO_WORKSTATIONS = ("test-workstation", "test-workstation-2")
_DEMO_SECRET = "demo-secret"  # the emulator's and the daemon's shared secret; lives in a file, not the TOML
_TIME_LIMIT_S = 900.0
_MOS_SPECIMENS = 2  # the first session ends with a MOS label and this many specimen sheets showing its code
#: At rest: what nothing moves on without a human.
_DONE_STATES = frozenset(s.value for s, driver in DRIVERS.items() if driver in (Driver.OPERATOR, Driver.NOBODY))


def demo_config(workdir: Path, *, ars_port: int) -> dict[str, object]:
    """The demo's configuration as a TOML-ready dict (short settle window and poll intervals)."""
    base = f"http://127.0.0.1:{ars_port}"
    return {
        "ndrive": {
            "root": str(workdir / "ndrive"),
            "workstations": list(DEMO_WORKSTATIONS),
            "settle_s": 2.0,
            "scan_interval_s": 0.5,
        },
        "storage": {"root": str(workdir / "storage"), "database": str(workdir / "track.sqlite3")},
        "ars": {
            "base_url": base,
            "token_url": f"{base}/keycloak/realms/dassco/protocol/openid-connect/token",
            "client_id": "integration",
            "client_secret_file": str(workdir / "ars.secret"),
            "sync_poll_initial_s": 0.5,
            "sync_poll_max_s": 2.0,
        },
        "lanes": {"probe_initial_s": 1.0},
        "concurrency": {"assets": 16, "ars_connections": 8},
        "api": {"port": 0},
        "processing": {"derivative_poll_s": 0.5},
        "retry": {"attempts": 5, "initial_s": 0.2, "max_s": 5.0, "jitter_s": 0.2},
        "daemon": {"log_format": "json"},
        "pipelines": {
            "test-pipeline": {
                "jobs": [["asset_loader"], ["barcode", "ocr"], ["crop_derivatives"], ["derivative_upload"], ["cleanup"]]
            }
        },
    }


def _generate(ndrive: Path, assets: int, console: Console) -> dict[str, str]:
    """Write this run's specimens; returns their GUIDs (the demo counts only these, even in a reused workdir)."""
    started = time.perf_counter()
    now = datetime.now(UTC).replace(microsecond=0)
    made: dict[str, str] = {}
    per_workstation = [assets // 2 + assets % 2, assets // 2]
    for index, (workstation, count) in enumerate(zip(DEMO_WORKSTATIONS, per_workstation, strict=True)):
        if count == 0:
            continue
        spec = SpecimenSpec(workstation=workstation, workstation_index=index)
        session = f"{now:%Y%m%d-%H%M%S}-session-{index + 1}"
        mos = _MOS_SPECIMENS if index == 0 and count >= 3 * (_MOS_SPECIMENS + 1) else 0  # one MOS, not tiny runs
        for asset in generate_session(ndrive, workstation, session, count, spec=spec, seed=index + 1, start=now,
                                      mos_specimens=mos):  # fmt: skip
            made[asset.guid] = asset.expected_codes[0]
    console.print(f"generated {len(made)} specimens (TIFF + DNG + JSON) in {time.perf_counter() - started:.1f} s")
    return made


def run_demo(*, assets: int, workdir: Path | None) -> int:
    """Run the demo; returns the process exit code."""
    console = Console(soft_wrap=True)  # paths are printed whole, to be copied
    root = workdir or Path(tempfile.mkdtemp(prefix="integration-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    (root / "ars.secret").write_text(_DEMO_SECRET + "\n", encoding="utf-8")
    console.print(f"[bold]DaSSCo integration demo[/bold] in {root}")
    guids = _generate(root / "ndrive", assets, console)
    log_path = root / "daemon.log"
    with log_path.open("a", encoding="utf-8") as log_stream:
        configure_logging(fmt="json", level="info", stream=log_stream)
        return trio.run(_demo, root, guids, console, log_path)


def demo_emulator_settings(data_dir: Path, *, secret: str, sync_tick_s: float = 0.5) -> EmulatorSettings:
    """The emulator as the demo runs it: both demo workstations in service, ERDA every ``sync_tick_s``."""
    return EmulatorSettings(
        data_dir=str(data_dir),
        client_id="integration",
        client_secret=secret,
        sync_tick_s=sync_tick_s,
        preparation_types=("slide", "pinning", "sheet"),  # herbarium sheets (processing.preparation_type)
        institutions={
            "test-institution": InstitutionSettings(
                collections=("test-collection",), pipelines=("test-pipeline",), workstations=DEMO_WORKSTATIONS
            )
        },
    )


async def _demo(root: Path, guids: dict[str, str], console: Console, log_path: Path) -> int:
    settings = demo_emulator_settings(root / "ars", secret=_DEMO_SECRET)
    async with trio.open_nursery() as nursery:
        port: int = await nursery.start(lambda task_status: serve_ars_emulator(settings, task_status=task_status))
        config_path = root / "config.toml"
        config_path.write_text(tomli_w.dumps(demo_config(root, ars_port=port)), encoding="utf-8")
        config = load_config(config_path)
        console.print(f"ARS emulator on http://127.0.0.1:{port}; config {config_path}; daemon log {log_path}")
        started = time.perf_counter()
        daemon: Daemon = await nursery.start(
            lambda task_status: run_daemon(config, secret=config.ars.resolve_secret, task_status=task_status)
        )
        counts = await _watch_progress(daemon, guids, console)
        elapsed = time.perf_counter() - started
        outcomes = await collect_outcomes(daemon.store, guids, daemon.ars)
        nursery.cancel_scope.cancel()
    console.print(render_status(collect_status(config)), highlight=False)
    print_outcomes(outcomes, console)
    return _summary(root, config, len(guids), counts, elapsed, console)


async def _watch_progress(daemon: Daemon, guids: dict[str, str], console: Console) -> dict[str, int]:
    """Show this run's assets moving (only these: a reused workdir holds older ones) until all are at rest."""
    deadline = trio.current_time() + _TIME_LIMIT_S
    expected = len(guids)
    counts: dict[str, int] = {}
    with Live(console=console, refresh_per_second=4, transient=True) as live:
        while trio.current_time() < deadline:
            counts = await daemon.store.assets.counts_by_state(list(guids))
            live.update(_progress_table(counts, expected, daemon))
            done = sum(n for state, n in counts.items() if state in _DONE_STATES)
            if done >= expected and sum(counts.values()) >= expected:
                break
            await trio.sleep(0.25)
    console.print()
    return counts


def _progress_table(counts: dict[str, int], expected: int, daemon: Daemon) -> Table:
    table = Table(title=f"{counts.get('finalized', 0)}/{expected} finalized", min_width=40)
    table.add_column("state")
    table.add_column("assets", justify="right")
    waiting = expected - sum(counts.values())
    if waiting > 0:
        table.add_row("on the N-Drive (settling)", str(waiting))
    for state in AssetState:
        if counts.get(state.value):
            table.add_row(state.value, str(counts[state.value]))
    lane = daemon.lanes.ars.statistics()
    table.caption = f"ARS lane {'PAUSED: ' + lane.reason if lane.paused else 'open'}"
    return table


def _summary(
    root: Path, config: Config, expected: int, counts: dict[str, int], elapsed: float, console: Console
) -> int:
    finalized = counts.get(AssetState.FINALIZED.value, 0)
    console.print(
        f"\n{finalized}/{expected} assets finalized {elapsed:.1f} s after the daemon started "
        f"({finalized / elapsed * 60 if elapsed else 0:.1f} assets/min, the 2 s settle window included)"
    )
    console.print(f"  N-Drive:        {config.ndrive.root}")
    console.print(f"  local storage:  {config.storage.root}")
    console.print(f"  track database: {config.storage.database}")
    console.print(f"  ARS (emulated): {root / 'ars'} (ERDA copies under erda/)")
    console.print(f"  reports:        {config.processing.report_dir(config.storage.root, '<workstation>')}")
    console.print(f"  job folders:    {config.processing.work_dir(config.storage.root) / 'jobs'}")
    console.print(f"  inspect:        integration status -c {root / 'config.toml'}")
    if finalized == expected:
        console.print("[green]demo finished: every asset is finalized[/green]")
        return 0
    console.print(f"[red]demo did not finish: {msgspec.json.encode(counts).decode()}[/red]")
    return 1
