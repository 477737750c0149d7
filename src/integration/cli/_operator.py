"""``integration retry`` and ``integration ack``: an operator moves assets on, without SQL.

While a daemon runs, the request goes *through* it: a request row that the daemon answers within
``daemon.admin_poll_s`` (so its actors see the change and it stays the only one changing assets); the command
waits for the answer and prints it. A command that stops waiting — its ``--timeout``, Ctrl-C, or the daemon
stopped — withdraws its request unless the daemon has taken it already (then it waits for the answer), so
that no later daemon carries it out unexpectedly. With no daemon running, the command takes the database lock
as a *command* (so no daemon starts meanwhile) and does the same work on the database itself; a second command
meanwhile is told to try again in a moment.
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
from integration.store import (
    CommandRunning,
    LockHolder,
    RequestRecord,
    Store,
    daemon_lock,
    lock_holder,
    open_store,
    read_request,
    submit_request,
    withdraw_request,
)

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

    results = _perform(config, "retry", request, list[RetryResult], direct, timeout, all_or_nothing=False)
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

    result = _perform(config, "ack", request, AckResult, direct, timeout, all_or_nothing=True)
    closed = ", ".join(f"#{i}" for i in result.acknowledged) or "none (nothing open matched)"
    typer.echo(f"acknowledged: {closed}")


def _perform(
    config: Config,
    kind: str,
    request: msgspec.Struct,
    answer: type[T],
    direct: Callable[[Store], Awaitable[T]],
    timeout: float,
    *,
    all_or_nothing: bool,
) -> T:
    """Send ``request`` to the running daemon and wait for its answer, or do it ``direct`` when none runs.

    ``all_or_nothing``: ``direct`` changes nothing when it raises (one transaction), so an error may say so.
    Exits 1 (``typer.Exit``) when the work was not done, saying why and what to do.
    """
    database = Path(config.storage.database)
    if not database.exists():
        raise fail(f"no database at {database} (has the daemon run yet?)")
    for _ in range(2):  # a daemon may start between the look and the lock: then go through it
        holder = lock_holder(database)
        if holder is not None and holder.role == "command":
            raise _busy(holder.pid)
        if holder is not None:
            return _through_daemon(database, holder.pid, kind, request, answer, timeout)
        try:
            return _locked_direct(database, direct, all_or_nothing=all_or_nothing)
        except CommandRunning as exc:
            raise _busy(exc.pid) from None
        except DaemonRunning:
            continue
    raise fail("a daemon started and stopped while this command ran; run it again", code=1)


def _busy(pid: int | None) -> typer.Exit:
    """The answer when another command holds the database: nobody would answer a request, so none is sent."""
    return fail(
        f"another `integration` command (PID {pid or 'unknown'}) is working on the database; try again in a moment",
        code=1,
    )


def _locked_direct(database: Path, direct: Callable[[Store], Awaitable[T]], *, all_or_nothing: bool) -> T:
    """Do the work on the database itself, holding its lock as a command.

    Raises :class:`DaemonRunning` (:class:`CommandRunning` for another command) when someone holds the lock;
    exits 1 when the work stopped on an error, saying whether something may have been changed already.
    """
    with daemon_lock(database, role="command"):
        try:
            return trio.run(_direct, database, direct)
        except* IntegrationError as group:
            raise fail(_stopped(_first(group), all_or_nothing=all_or_nothing), code=1) from None


def _first(group: BaseExceptionGroup[IntegrationError]) -> IntegrationError:
    """The first error of ``group``, however deeply nested."""
    error: IntegrationError | BaseExceptionGroup[IntegrationError] = group.exceptions[0]
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error


def _stopped(error: IntegrationError, *, all_or_nothing: bool) -> str:
    """What to say when ``direct`` raised: "nothing was changed" only when that is certain."""
    reason = error.reason if isinstance(error, InfrastructureError) else str(error)
    if all_or_nothing:
        return f"nothing was changed: {reason}"
    return f"stopped before the end: {reason} (check `integration status`)"


async def _direct(database: Path, direct: Callable[[Store], Awaitable[T]]) -> T:
    async with open_store(database) as store:
        return await direct(store)


def _through_daemon(
    database: Path, pid: int | None, kind: str, request: msgspec.Struct, answer: type[T], timeout: float
) -> T:
    """Hand ``request`` to the daemon ``pid`` and return its answer; exits 1 when it is not done (and says why)."""
    body = msgspec.json.encode(request).decode()
    request_id = submit_request(database, kind=kind, body=body, requested_by=getpass.getuser())
    typer.echo(f"sent to the running daemon (PID {pid or 'unknown'}) as request #{request_id}", err=True)
    try:
        record = _await_answer(database, request_id, pid, timeout)
    except KeyboardInterrupt:
        raise _interrupted(database, request_id) from None
    if record.status == "failed":
        error = msgspec.json.decode(record.result or "{}", type=dict[str, object]).get("error", record.result)
        raise fail(f"the daemon did not do it: {error}", code=1)
    return msgspec.json.decode(record.result, type=answer)


def _await_answer(database: Path, request_id: int, pid: int | None, timeout: float) -> RequestRecord:
    """Poll until the request is answered; withdraws it (and exits 1) when no answer can be expected.

    After ``timeout`` a request the daemon has not taken is withdrawn; one it took is waited for. When no
    daemon holds the database any more, the request is withdrawn unless a daemon (a new one) takes it.
    """
    deadline = time.monotonic() + timeout
    taken = False
    while True:
        record = read_request(database, request_id)
        if record is not None and record.status != "pending":
            return record
        holder = lock_holder(database)
        if holder is None or holder.role == "command":
            _withdraw_without_daemon(database, request_id, pid, holder)
        elif not taken and time.monotonic() >= deadline:
            _withdraw_after_timeout(database, request_id, pid, timeout)
            taken = True  # not withdrawn: the daemon took it (or answered it, read on the next look)
        _pause()


def _pause() -> None:
    """Wait before the next look at the request (Ctrl-C interrupts it)."""
    time.sleep(_POLL_S)


def _withdraw_after_timeout(database: Path, request_id: int, pid: int | None, timeout: float) -> None:
    """Withdraw a request the daemon has not taken within ``timeout`` (exits 1); else say we wait for it."""
    if withdraw_request(database, request_id, why=f"the daemon did not take it within {timeout:g} s"):
        raise fail(
            f"the daemon (PID {pid or 'unknown'}) did not take request #{request_id} within {timeout:g} s; the request "
            "is withdrawn and nothing was changed. Is the daemon stuck? Look at its log, then run the command again",
            code=1,
        )
    record = read_request(database, request_id)
    if record is not None and record.status == "pending":
        typer.echo(f"the daemon is working on request #{request_id}; waiting for its answer", err=True)


def _withdraw_without_daemon(database: Path, request_id: int, pid: int | None, holder: LockHolder | None) -> None:
    """No daemon holds the database any more: withdraw the request (exits 1), or return to wait for an answer.

    A request no daemon took is withdrawn at once. One the stopped daemon took but never answered is withdrawn
    while holding the lock (so no new daemon is working on it); when someone else holds the lock, a new daemon
    may answer it, so the caller keeps waiting.
    """
    gone = f"the daemon (PID {pid or 'unknown'}) stopped"
    if holder is not None:
        gone += f" and another `integration` command (PID {holder.pid or 'unknown'}) holds the database"
    if withdraw_request(database, request_id, why=f"{gone} before taking it"):
        raise fail(
            f"{gone} before it took request #{request_id}; the request is withdrawn and nothing was changed: "
            "run the command again",
            code=1,
        )
    if holder is not None:
        return
    try:
        with daemon_lock(database, role="command"):
            if withdraw_request(database, request_id, why=f"{gone} before answering it", even_if_taken=True):
                raise fail(
                    f"{gone} while working on request #{request_id}, before answering it; the request is withdrawn "
                    "so that no later daemon repeats it. Some assets may have been changed already: check "
                    "`integration status`, then run the command again if needed",
                    code=1,
                )
    except DaemonRunning:
        pass  # a new daemon (or a command) took the lock meanwhile: a new daemon answers the request too


def _interrupted(database: Path, request_id: int) -> typer.Exit:
    """Ctrl-C while waiting: withdraw the request if the daemon has not taken it; say which it was."""
    if withdraw_request(database, request_id, why="its command was interrupted"):
        return fail(f"interrupted: request #{request_id} is withdrawn and nothing was changed", code=130)
    record = read_request(database, request_id)
    if record is not None and record.status != "pending":
        return fail(
            f"interrupted: request #{request_id} was answered ({record.status}); see `integration status`", code=130
        )
    return fail(
        f"interrupted: the daemon has taken request #{request_id} and carries it out; see `integration status`",
        code=130,
    )
