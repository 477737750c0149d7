"""``integration retry`` and ``integration ack``: an operator moves assets on, without SQL.

While a daemon runs, the request goes *through* it: a request row that the daemon answers within
``daemon.admin_poll_s`` (so its actors see the change and it stays the only one changing assets); the command
waits for the answer and prints it. With no daemon running, the command takes the daemon lock (so none can
start meanwhile) and does the same work on the database itself.
"""

from __future__ import annotations

import getpass
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import msgspec
import trio
import typer

from integration.actors import AckRequest, AckResult, RetryRequest, RetryResult, acknowledge, retry_assets
from integration.adapters.ars import open_ars_client
from integration.cli._common import ConfigOption, fail, load_or_exit
from integration.config import Config
from integration.errors import DaemonRunning, InfrastructureError, IntegrationError
from integration.store import Store, daemon_lock, holder_of, open_store, read_request, submit_request

__all__ = ["ack", "retry"]

T = TypeVar("T")
_POLL_S = 0.2

ReasonOption = Annotated[str, typer.Option("--reason", help="Why (recorded in every event it causes).")]
TimeoutOption = Annotated[float, typer.Option("--timeout", help="How long to wait for a running daemon's answer.")]


def retry(
    guids: Annotated[list[str] | None, typer.Argument(help="Asset GUIDs to retry.")] = None,
    *,
    config_path: ConfigOption,
    reason: ReasonOption,
    all_quarantined: Annotated[bool, typer.Option("--all-quarantined", help="Every quarantined asset.")] = False,
    all_failed: Annotated[bool, typer.Option("--all-failed", help="Every failed asset.")] = False,
    timeout: TimeoutOption = 120.0,
) -> None:
    """Move quarantined/failed assets on, after reconciling each with what ARS holds (exit 1 if any refused)."""
    if not (guids or all_quarantined or all_failed):
        raise fail("name the GUIDs to retry, or use --all-quarantined / --all-failed")
    if not reason.strip():
        raise fail("--reason must say why (it is recorded with every change)")
    config = load_or_exit(config_path)
    request = RetryRequest(
        guids=list(guids or []),
        all_quarantined=all_quarantined,
        all_failed=all_failed,
        reason=reason,
        by=getpass.getuser(),
    )

    async def direct(store: Store) -> list[RetryResult]:
        async with open_ars_client(config.ars, config.retry, secret=config.ars.resolve_secret) as ars:
            return await retry_assets(request, store=store, ars=ars)

    results = _perform(config, "retry", request, list[RetryResult], direct, timeout)
    for result in results:
        state = f" -> {result.state}" if result.outcome == "moved" else f" ({result.state})" if result.state else ""
        typer.echo(f"{result.guid}: {result.outcome}{state}: {result.message}")
    if not results:
        typer.echo("no asset matched")
    if any(r.outcome in ("refused", "unknown") for r in results):
        raise typer.Exit(1)


def ack(
    ids: Annotated[list[int] | None, typer.Argument(help="Ids of rejections (shown by `integration status`).")] = None,
    *,
    config_path: ConfigOption,
    reason: ReasonOption,
    session: Annotated[str | None, typer.Option("--session", help="Every open rejection of this folder.")] = None,
    every: Annotated[bool, typer.Option("--all", help="Every open rejection.")] = False,
    timeout: TimeoutOption = 120.0,
) -> None:
    """Acknowledge intake rejections a human has dealt with, so they no longer need a human."""
    if not (ids or session or every):
        raise fail("name the rejection ids, or use --session FOLDER / --all")
    if not reason.strip():
        raise fail("--reason must say why (it is recorded)")
    config = load_or_exit(config_path)
    request = AckRequest(ids=list(ids or []), session=session, all=every, reason=reason, by=getpass.getuser())

    async def direct(store: Store) -> AckResult:
        return await acknowledge(request, store=store)

    result = _perform(config, "ack", request, AckResult, direct, timeout)
    closed = ", ".join(f"#{i}" for i in result.acknowledged) or "none (nothing open matched)"
    typer.echo(f"acknowledged: {closed}")


def _perform(
    config: Config,
    kind: str,
    request: msgspec.Struct,
    answer: type[T],
    direct: Callable[[Store], Awaitable[T]],
    timeout: float,
) -> T:
    """Send ``request`` to the running daemon and wait for its answer, or do it ``direct`` when none runs."""
    database = Path(config.storage.database)
    if not database.exists():
        raise fail(f"no database at {database} (has the daemon run yet?)")
    for _ in range(2):  # a daemon may start between the look and the lock: then go through it
        pid = holder_of(database)
        if pid is not None:
            return _through_daemon(database, pid, kind, request, answer, timeout)
        try:
            return _locked_direct(database, direct)
        except DaemonRunning:
            continue
    raise fail("a daemon started and stopped while this command ran; run it again", code=1)


def _locked_direct(database: Path, direct: Callable[[Store], Awaitable[T]]) -> T:
    """Do the work on the database itself, holding the daemon lock; raises DaemonRunning if one holds it."""
    with daemon_lock(database):
        try:
            return trio.run(_direct, database, direct)
        except* InfrastructureError as group:
            error = group.exceptions[0]
            assert isinstance(error, InfrastructureError)
            raise fail(f"nothing was changed: {error.reason}", code=1) from None
        except* IntegrationError as group:
            raise fail(f"nothing was changed: {group.exceptions[0]}", code=1) from None


async def _direct(database: Path, direct: Callable[[Store], Awaitable[T]]) -> T:
    async with open_store(database) as store:
        return await direct(store)


def _through_daemon(database: Path, pid: int, kind: str, request: msgspec.Struct, answer: type[T], timeout: float) -> T:
    body = msgspec.json.encode(request).decode()
    request_id = submit_request(database, kind=kind, body=body, requested_by=getpass.getuser())
    typer.echo(f"sent to the running daemon (PID {pid or 'unknown'}) as request #{request_id}", err=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = read_request(database, request_id)
        if record is not None and record.status != "pending":
            if record.status == "failed":
                error = msgspec.json.decode(record.result or "{}", type=dict[str, object]).get("error", record.result)
                raise fail(f"the daemon did not do it: {error}", code=1)
            return msgspec.json.decode(record.result, type=answer)
        time.sleep(_POLL_S)
    raise fail(
        f"the daemon has not answered request #{request_id} within {timeout:g} s; it stays queued and is answered "
        "when the daemon gets to it (see its log)",
        code=1,
    )
