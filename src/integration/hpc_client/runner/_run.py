"""One run of one job attempt on a node: ticket → started → module → finished / failed.

Exit codes (for the executor and a human): 0 the outcome was reported (also a failure, and a ticket the daemon
no longer hands out), 2 this node's configuration is wrong (token, secret, work root), 75 the daemon could not
be reached to report (its watchdog settles the job), 70 a bug in the runner itself.
"""

from __future__ import annotations

import os
import socket
import sys
import traceback
from pathlib import Path

import msgspec

from integration.domain import FailureKind
from integration.errors import (
    ConfigError,
    DataError,
    DownloadRefused,
    GroupHeld,
    IntegrationError,
    TransientError,
)
from integration.hpc_client.runner._ars import NodeArs
from integration.hpc_client.runner._daemon import DaemonLink, TicketGone
from integration.hpc_client.runner._modules import MODULES, Work

__all__ = ["EXIT_CONFIG", "EXIT_OK", "EXIT_UNREACHABLE", "RunnerSettings", "run_job"]

EXIT_OK = 0
EXIT_CONFIG = 2
EXIT_BUG = 70
EXIT_UNREACHABLE = 75


class RunnerSettings(msgspec.Struct, frozen=True, kw_only=True):
    module: str
    key: str
    server: str
    token: str
    work_root: Path
    ars_secret: str


def _say(message: str) -> None:
    print(f"integration hpc run: {message}", file=sys.stderr, flush=True)


def run_job(settings: RunnerSettings) -> int:
    """Run one attempt; returns the exit code (see the module's docstring)."""
    if settings.module not in MODULES:
        _say(f"unknown module {settings.module!r}; one of {', '.join(MODULES)}")
        return EXIT_CONFIG
    link = DaemonLink(settings.server, settings.token)
    try:
        return _run(settings, link)
    except TicketGone as exc:
        _say(f"nothing to do: {exc}")
        return EXIT_OK
    except ConfigError as exc:
        _say(str(exc))
        return EXIT_CONFIG
    except TransientError as exc:
        _say(f"{exc} — the daemon's watchdog will settle this job")
        return EXIT_UNREACHABLE
    finally:
        link.close()


def _run(settings: RunnerSettings, link: DaemonLink) -> int:
    ticket = link.ticket(settings.key)
    if ticket.module != settings.module:
        raise ConfigError(f"job {settings.key} runs module {ticket.module!r}, not {settings.module!r}")
    link.report(settings.key, "started", {"host": socket.gethostname(), "pid": os.getpid()})
    folder = settings.work_root / ticket.guid
    ars = NodeArs(ticket.ars, settings.ars_secret)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        result, version = MODULES[ticket.module](
            Work(ticket=ticket, folder=folder, work_root=settings.work_root, ars=ars)
        )
    except Exception as exc:  # every failure is reported with what it is blamed on
        kind, exit_code = _blame(exc)
        detail = "".join(traceback.format_exception(exc)[-6:]) if exit_code == EXIT_BUG else ""
        _say(f"{ticket.module} failed ({kind}): {exc}")
        link.report(settings.key, "failed", {"reason": f"{type(exc).__name__}: {exc}"[:2000], "kind": kind,
                                             "stderr_tail": detail[-4000:]})  # fmt: skip
        return EXIT_OK if exit_code != EXIT_BUG else EXIT_BUG
    finally:
        ars.close()
    answer = link.report(settings.key, "finished", {"module_version": version, "result": result})
    _say(f"{ticket.module} finished: the daemon has the job {answer.state}")
    return EXIT_OK


def _blame(exc: Exception) -> tuple[FailureKind, int]:
    if isinstance(exc, DownloadRefused):
        # 403: this node's ARS client lacks rights (every download would be refused); 404 and the rest: the link
        # or the share, retried — never blamed on the image itself
        return ("config" if exc.status_code in (401, 403, 407) else "node"), EXIT_OK
    if isinstance(exc, DataError):
        return "asset", EXIT_OK
    if isinstance(exc, ConfigError | GroupHeld):
        return "config", EXIT_OK
    if isinstance(exc, TransientError | OSError | IntegrationError):
        return "node", EXIT_OK
    return "node", EXIT_BUG
