"""The ``integration`` command: one entry point for the daemon, the operator, the emulator and the demo.

Exit codes: 0 success, 1 the work failed (e.g. an asset could not be retried, the demo did not finish),
2 bad configuration or usage (including a daemon that refuses to start).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from integration.cli._common import load_or_exit
from integration.cli._hpc import hpc_app
from integration.cli._operator import ack, retry
from integration.cli._run import run
from integration.cli._status import status
from integration.config import config_warnings

__all__ = ["app", "main"]

app = typer.Typer(
    name="integration",
    help="DaSSCo integration: N-Drive -> ARS -> HPC, every asset an explicit, persisted state machine.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("run")(run)
app.command("status")(status)
app.command("retry")(retry)
app.command("ack")(ack)
app.add_typer(hpc_app)


@app.command("check-config")
def check_config(path: Annotated[Path, typer.Argument(help="The TOML configuration file to check.")]) -> None:
    """Validate a configuration file; list every problem with its key path and a fix hint (exit 2).

    Warnings (a missing N-Drive folder, a secret that cannot be read here) are printed but still exit 0.
    """
    config = load_or_exit(path)
    for warning in config_warnings(config):
        typer.echo(f"warning: {warning}", err=True)
    typer.echo(f"{path}: OK ({len(config.ndrive.workstations)} workstation(s), {len(config.pipelines)} pipeline(s))")


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
