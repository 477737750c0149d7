"""``integration emulate-ars``: run the ARS emulator as a server until SIGINT / SIGTERM.

Once listening it prints the URL, then the clients it accepts (id, secret, roles) so a daemon can be configured
against it. A port that cannot be listened on is one line on stderr and exit code 2, without a traceback.
"""

from __future__ import annotations

import signal
import sys
from functools import partial
from pathlib import Path
from typing import Annotated

import trio
import typer

from integration.emulators.ars._model import clients_of
from integration.emulators.ars._server import serve_ars_emulator
from integration.emulators.ars._settings import EmulatorSettings, load_settings
from integration.errors import ConfigError

__all__ = ["emulate_ars"]

_USAGE_ERROR = 2


def _client_lines(settings: EmulatorSettings) -> list[str]:
    """One line per accepted client: what a daemon's ``[ars]`` section needs."""
    labels = ("client", "admin client")
    return [
        f"{label}: id={client.client_id} secret={client.secret} roles={','.join(client.roles) or '(none)'}"
        for label, client in zip(labels, clients_of(settings), strict=True)
    ]


async def _serve_until_signal(settings: EmulatorSettings, host: str, port: int) -> int:
    """Serve until SIGINT / SIGTERM; the exit code (2 if ``host:port`` cannot be listened on)."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            serve = partial(serve_ars_emulator, settings, host=host, port=port)
            try:
                bound: int = await nursery.start(serve)
            except OSError as exc:
                reason = (exc.strerror or str(exc)).lower()
                print(f"error: cannot listen on {host}:{port}: {reason}", file=sys.stderr, flush=True)
                return _USAGE_ERROR
            print(f"ARS emulator listening on http://{host}:{bound}", flush=True)
            for line in _client_lines(settings):
                print(line, flush=True)
            async for _ in signals:
                nursery.cancel_scope.cancel()
                break
    return 0


# A CLI command takes one parameter per option; that is why this function has more than eight.
def emulate_ars(
    port: Annotated[int, typer.Option(help="TCP port to listen on (0 picks a free one).")] = 8085,
    host: Annotated[str, typer.Option(help="Address to bind; keep it on loopback.")] = "127.0.0.1",
    config: Annotated[Path | None, typer.Option(help="TOML file with EmulatorSettings fields.")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Folder for shares/ and erda/ (default: a temp dir).")] = None,
    client_id: Annotated[str | None, typer.Option(help="Accepted client id (default integration).")] = None,
    client_secret: Annotated[str | None, typer.Option(help="Accepted client secret.")] = None,
    admin_client_id: Annotated[
        str | None, typer.Option(help="Accepted admin client id (default integration-admin).")
    ] = None,
    admin_client_secret: Annotated[str | None, typer.Option(help="Accepted admin client secret.")] = None,
    latency_ms: Annotated[float | None, typer.Option(help="Latency added to every request.")] = None,
    error_rate: Annotated[float | None, typer.Option(help="Fraction of API requests answered 503.")] = None,
    sync_tick_s: Annotated[float | None, typer.Option(help="ERDA sync period in seconds (0: off).")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the fault draws.")] = None,
) -> None:
    """Run the ARS emulator (ARS, file proxy, Keycloak token endpoint) until SIGINT or SIGTERM."""
    try:
        settings = load_settings(
            config,
            overrides={
                "data_dir": None if data_dir is None else str(data_dir),
                "client_id": client_id,
                "client_secret": client_secret,
                "admin_client_id": admin_client_id,
                "admin_client_secret": admin_client_secret,
                "sync_tick_s": sync_tick_s,
                "seed": seed,
            },
            fault_overrides={"latency_ms": latency_ms, "error_rate": error_rate},
        )
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(_USAGE_ERROR) from exc
    code = trio.run(_serve_until_signal, settings, host, port)
    if code:
        raise typer.Exit(code)
