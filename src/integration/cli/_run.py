"""``integration run``: the daemon, until SIGINT/SIGTERM — refusing to start when it cannot work.

It exits 2 with one plain line when another daemon holds the database, when Keycloak refuses the client
credentials, when ``ars.base_url`` is wrong, or when ARS is unreachable (``--offline-ok`` starts anyway, with
the ARS lane paused until ARS answers).
"""

from __future__ import annotations

import signal
from typing import Annotated

import structlog
import trio
import typer

from integration.cli._common import ConfigOption, fail, load_or_exit
from integration.config import Config
from integration.errors import ArsUnavailable, ConfigError, DaemonRunning, InfrastructureError
from integration.log_setup import configure_logging
from integration.store import StoreUnavailable

__all__ = ["run"]


def run(
    config_path: ConfigOption,
    offline_ok: Annotated[
        bool, typer.Option("--offline-ok", help="Start even if ARS is unreachable now (its lane starts paused).")
    ] = False,
) -> None:
    """Run the integration daemon until SIGINT/SIGTERM."""
    signal.signal(signal.SIGTERM, _stop_before_start)  # trio's receiver takes over once the daemon runs
    config = load_or_exit(config_path)
    try:
        config.ars.resolve_secret()
    except (ConfigError, OSError) as exc:
        raise fail(str(exc)) from exc
    configure_logging(fmt=config.daemon.log_format, level=config.daemon.log_level)
    try:
        trio.run(_run_until_signal, config, offline_ok)
    except* DaemonRunning as group:
        raise fail(str(group.exceptions[0])) from None
    except* StoreUnavailable as group:
        raise fail(f"stopped: {group.exceptions[0]}; fix it and start the daemon again") from None
    except* ArsUnavailable as group:
        raise fail(f"{group.exceptions[0]}; start with --offline-ok to run anyway") from None
    except* InfrastructureError as group:
        error = group.exceptions[0]
        assert isinstance(error, InfrastructureError)
        raise fail(f"refusing to start: {error.reason}") from None
    except* ConfigError as group:  # an API token file that cannot be used, the API's port taken
        problem = group.exceptions[0]
        assert isinstance(problem, ConfigError)
        raise fail("refusing to start: " + "; ".join(problem.problems)) from None


def _stop_before_start(signum: int, frame: object) -> None:
    """SIGTERM before the daemon runs: nothing was started yet, so stop cleanly (exit 0)."""
    raise SystemExit(0)


async def _run_until_signal(config: Config, offline_ok: bool) -> None:
    from integration.actors import run_daemon

    log = structlog.get_logger()
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            await nursery.start(
                lambda task_status: run_daemon(
                    config,
                    secret=config.ars.resolve_secret,
                    startup_check="offline_ok" if offline_ok else "require",
                    task_status=task_status,
                )
            )
            async for received in signals:
                log.info("shutdown_requested", signal=signal.Signals(received).name)
                nursery.cancel_scope.deadline = trio.current_time()  # every step is intent-bracketed
                break
    log.info("daemon_stopped")
