"""The ``integration`` command: one entry point for the daemon, the emulator, the demo and the tools.

Exit codes: 0 success, 1 the work failed (e.g. the demo did not reach its goal), 2 bad configuration or usage.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import Annotated

import msgspec
import structlog
import trio
import typer

from integration.config import Config, load_config
from integration.errors import ConfigError
from integration.log_setup import configure_logging

__all__ = ["app", "main"]

app = typer.Typer(
    name="integration",
    help="DaSSCo integration: N-Drive -> ARS -> HPC, every asset an explicit, persisted state machine.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="The TOML configuration file.")]


def _load_or_exit(path: Path) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        for problem in exc.problems:
            typer.echo(f"  - {problem}", err=True)
        raise typer.Exit(2) from exc


@app.command("check-config")
def check_config(path: Annotated[Path, typer.Argument(help="The TOML configuration file to check.")]) -> None:
    """Validate a configuration file; list every problem with its key path and a fix hint (exit 2)."""
    config = _load_or_exit(path)
    try:
        config.ars.resolve_secret()
    except ConfigError as exc:
        typer.echo(f"warning: {exc}", err=True)
    except OSError as exc:
        typer.echo(f"warning: ars.client_secret_file cannot be read: {exc.strerror}", err=True)
    typer.echo(f"{path}: OK ({len(config.ndrive.workstations)} workstation(s), {len(config.pipelines)} pipeline(s))")


@app.command("run")
def run(config_path: ConfigOption) -> None:
    """Run the integration daemon until SIGINT/SIGTERM."""
    config = _load_or_exit(config_path)
    try:
        secret = config.ars.resolve_secret()
    except (ConfigError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    configure_logging(fmt=config.daemon.log_format, level=config.daemon.log_level)
    trio.run(_run_until_signal, config, secret)


async def _run_until_signal(config: Config, secret: str) -> None:
    from integration.actors import run_daemon

    log = structlog.get_logger()
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(lambda task_status: run_daemon(config, secret=secret, task_status=task_status))
            async for received in signals:
                log.info("shutdown_requested", signal=signal.Signals(received).name)
                nursery.cancel_scope.deadline = trio.current_time()  # every step is intent-bracketed
                break
    log.info("daemon_stopped")


@app.command("status")
def status(
    config_path: ConfigOption,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Counts per state, lanes, and every asset or file that needs a human, with the reason."""
    from integration.status import collect_status, render_status

    config = _load_or_exit(config_path)
    if not Path(config.storage.database).exists():
        typer.echo(f"error: no database at {config.storage.database} (has the daemon run yet?)", err=True)
        raise typer.Exit(2)
    report = trio.run(collect_status, Path(config.storage.database))
    if as_json:
        sys.stdout.write(msgspec.json.encode(report).decode() + "\n")
    else:
        render_status(report)


@app.command("demo")
def demo(
    assets: Annotated[int, typer.Option("--assets", "-n", min=1, help="How many specimens to generate.")] = 40,
    workdir: Annotated[
        Path | None, typer.Option("--workdir", help="Where to put N-Drive, storage and DB (default: a new temp dir).")
    ] = None,
) -> None:
    """Run the whole system on embedded defaults: generated specimens, ARS emulator, daemon, live progress."""
    from integration.demo import run_demo

    raise typer.Exit(run_demo(assets=assets, workdir=workdir))


def _register_emulator() -> None:
    from integration.emulators.ars import emulate_ars

    app.command("emulate-ars", help="Serve the ARS + file proxy + Keycloak emulator on 127.0.0.1.")(emulate_ars)


_register_emulator()


def main() -> None:
    """Console-script entry point."""
    app()
