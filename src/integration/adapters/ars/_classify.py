"""What each ARS, file-proxy and Keycloak refusal means: ONE table, as data, first match wins.

The question every row answers is "would the next asset get the same answer?" (``errors.py``, scope):

* site: Keycloak refuses the credentials, ARS refuses the rights, a route that exists in every ARS answers
  404 (the configured URL is wrong), the share disk is full: every asset would fail the same way, so the
  ARS lane pauses;
* group: a workstation out of service, an unknown collection, institution, pipeline or file format: the
  assets of that group are held, the others go on;
* asset: a refusal about this asset's own data (quarantine), a conflict to reconcile, a CRC mismatch to
  upload again, or a wait that concerns this asset alone.

A row matches on the operation (the client's name for the request), the HTTP status, the code and the
message. The *code* is the envelope's ``errorCode`` (ars-api.md §1), or the ``http_allocation_status`` of a
share answer (§5.6), or Keycloak's OAuth2 ``error`` (§2); :data:`NO_CODE` when the answer carried none (an
empty body, an HTML page from a proxy, Spring's own error JSON). The *message* is the ``errorMessage``,
``allocation_status_text`` or ``error_description``, else the raw body. DISK_FULL is the one answer that also
needs a number: the MB ARS still reports free (:func:`classify`).

:func:`describe` writes the table out for humans (docs/).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from integration.errors import GroupKind

__all__ = [
    "BUSY_WAIT_S",
    "NO_CODE",
    "RULES",
    "SHARE_DEDUP_WAIT_S",
    "TOO_BIG_WAIT_S",
    "Answer",
    "Outcome",
    "Rule",
    "Verdict",
    "classify",
    "describe",
]

#: The code of an answer that carried none (not an ARS envelope, no allocation status, no OAuth2 error).
NO_CODE = ""

#: How long an asset waits after "a share is already in the process of creation" (the file proxy's 5 min).
SHARE_DEDUP_WAIT_S = 300.0
#: How long an asset waits when ARS says the asset or its share is busy for a moment.
BUSY_WAIT_S = 60.0
#: How long an asset too big for the free space waits before it asks again.
TOO_BIG_WAIT_S = 300.0


class Outcome(enum.Enum):
    """What an answer means; the scope follows from it (see :attr:`scope`)."""

    ABSENT = "absent"  # not an error: what was asked about is not there (the operation answers None/False)
    CREDENTIALS = "credentials"  # Keycloak refused the client, or ARS refused a token Keycloak just issued
    FORBIDDEN = "forbidden"  # ARS refuses this client a role or right every asset needs
    ROUTE_NOT_FOUND = "route_not_found"  # 404 (or a redirect) on a path every ARS has: a URL setting is wrong
    DISK_FULL = "disk_full"  # DISK_FULL with (almost) nothing free: no asset gets a share
    TOO_BIG = "too_big"  # DISK_FULL with room left, just not for this asset: it waits
    NEVER_FITS = "never_fits"  # DISK_FULL for an allocation bigger than the whole share disk: a human must look
    GROUP = "group"  # every asset of one group (workstation, collection, ...) gets this answer
    WAITS = "waits"  # this asset must wait a while (a de-dup window, a sync in progress)
    CRC_MISMATCH = "crc_mismatch"  # 507: ARS computed another CRC-32; the asset actor uploads again
    EXISTS = "exists"  # the asset exists already: reconcile
    BEING_PROCESSED = "being_processed"  # a create of this GUID is in flight or failed < 300 s ago
    CHECKED_OUT = "checked_out"  # the asset has an open share already
    SHARE_CLOSED = "share_closed"  # the asset has no open share: open one (createShare) or reconcile
    TRANSIENT = "transient"  # may pass by itself: retried with back-off inside the adapter
    REJECTED = "rejected"  # a refusal about this asset's own data: a human must look

    @property
    def scope(self) -> str:
        """``site``, ``group``, ``asset`` or ``-`` (not an error), in words for :func:`describe`."""
        return _SCOPES.get(self, "asset")

    @property
    def raises(self) -> str:
        """The name of the exception class the outcome becomes."""
        return _RAISES[self]


_SCOPES = {
    Outcome.ABSENT: "-",
    Outcome.TRANSIENT: "asset (retried); site after the budget",
    Outcome.CREDENTIALS: "site",
    Outcome.FORBIDDEN: "site",
    Outcome.ROUTE_NOT_FOUND: "site",
    Outcome.DISK_FULL: "site",
    Outcome.GROUP: "group",
}
_RAISES = {
    Outcome.ABSENT: "(none: None / False)",
    Outcome.CREDENTIALS: "ArsCredentialsRefused",
    Outcome.FORBIDDEN: "ArsForbidden",
    Outcome.ROUTE_NOT_FOUND: "ArsRouteNotFound",
    Outcome.DISK_FULL: "ArsDiskFull",
    Outcome.TOO_BIG: "AssetWaits",
    Outcome.NEVER_FITS: "ArsRejected",
    Outcome.GROUP: "GroupHeld",
    Outcome.WAITS: "AssetWaits",
    Outcome.CRC_MISMATCH: "ArsCrcMismatch",
    Outcome.EXISTS: 'ArsConflict(kind="exists")',
    Outcome.BEING_PROCESSED: 'ArsConflict(kind="being_processed")',
    Outcome.CHECKED_OUT: 'ArsConflict(kind="checked_out")',
    Outcome.SHARE_CLOSED: "ArsShareClosed",
    Outcome.TRANSIENT: "ArsTransientError; ArsUnavailable after the retry budget",
    Outcome.REJECTED: "ArsRejected",
}


@dataclass(frozen=True, kw_only=True)
class Answer:
    """An unsuccessful answer, reduced to what the table matches on.

    ``status`` is the HTTP status, or for a 2xx share answer with a failed allocation the status ARS would
    give that allocation status (§5.6). ``remaining_mb`` is what a share answer reports as free,
    ``requested_mb`` the allocation that was asked for.
    """

    operation: str
    status: int
    code: str = NO_CODE
    message: str = ""
    remaining_mb: int | None = None
    requested_mb: int | None = None
    total_mb: int | None = None


@dataclass(frozen=True, kw_only=True)
class Rule:
    """One row: ``None`` in a match column means "any"; ``why`` tells a human what the answer means."""

    outcome: Outcome
    operations: frozenset[str] | None = None
    statuses: frozenset[int] | None = None
    code: str | None = None
    message: re.Pattern[str] | None = None
    group_kind: GroupKind | None = None
    wait_s: float | None = None
    why: str = ""

    def match(self, answer: Answer) -> re.Match[str] | bool:
        """A truthy value when the row applies (the message match, whose ``value`` group names a group)."""
        if self.operations is not None and answer.operation not in self.operations:
            return False
        if self.statuses is not None and answer.status not in self.statuses:
            return False
        if self.code is not None and answer.code != self.code:
            return False
        if self.message is None:
            return True
        return self.message.fullmatch(answer.message.strip()) or False


@dataclass(frozen=True, kw_only=True)
class Verdict:
    """The outcome of the first matching row, with the group's name and the wait when the row gives them."""

    outcome: Outcome
    rule: Rule
    group_value: str | None = None
    wait_s: float | None = None


def _row(
    outcome: Outcome,
    *,
    ops: str | tuple[str, ...] | None = None,
    status: int | range | tuple[int | range, ...] | None = None,
    code: str | None = None,
    message: str | None = None,
    group: GroupKind | None = None,
    wait_s: float | None = None,
    why: str = "",
) -> Rule:
    return Rule(
        outcome=outcome,
        operations=frozenset((ops,) if isinstance(ops, str) else ops) if ops is not None else None,
        statuses=_statuses(status) if status is not None else None,
        code=code,
        message=re.compile(message) if message is not None else None,
        group_kind=group,
        wait_s=wait_s,
        why=why,
    )


def _statuses(spec: int | range | tuple[int | range, ...]) -> frozenset[int]:
    parts = spec if isinstance(spec, tuple) else (spec,)
    return frozenset(n for part in parts for n in (part if isinstance(part, range) else (part,)))


_3XX = range(300, 400)
_4XX = range(400, 500)
_RETRYABLE = (408, 425, 429, range(500, 600))
#: The operations on one asset (of one institution and collection), where ARS's data rights apply.
_ASSET_OPERATIONS = (
    "create_asset",
    "update_asset",
    "get_asset",
    "get_status",
    "open_share",
    "upload_file",
    "list_share",
    "list_files",
    "delete_file",
    "delete_share",
    "synchronize",
)
_O = Outcome

#: The table. Order matters: the first row that matches decides.
RULES: tuple[Rule, ...] = (
    # --- Keycloak's token endpoint (ars-api.md §2) ------------------------------------------------------------
    _row(_O.CREDENTIALS, ops="token", status=401, why="Keycloak refused the client id or secret"),
    _row(_O.CREDENTIALS, ops="token", status=400, code="invalid_client", why="unknown client or wrong secret"),
    _row(_O.CREDENTIALS, ops="token", status=400, code="unauthorized_client", why="client may not use this grant"),
    _row(_O.ROUTE_NOT_FOUND, ops="token", status=(404, _3XX), why="ars.token_url is wrong"),
    _row(_O.TRANSIENT, ops="token", status=_RETRYABLE, why="Keycloak is down or overloaded"),
    _row(_O.CREDENTIALS, ops="token", status=_4XX, why="Keycloak refused the token request (client setup)"),
    # --- "not there" is an answer, not an error -------------------------------------------------------------
    _row(_O.ABSENT, ops="get_status", status=404, code=NO_CODE, message="", why="ARS does not know the GUID"),
    _row(_O.ABSENT, ops="delete_share", status=404, code="SHARE_NOT_FOUND", why="no share was open"),
    _row(_O.ABSENT, ops="delete_file", status=404, code="NOT_FOUND", why="the file is not in the share"),
    _row(
        _O.SHARE_CLOSED,
        ops="list_share",
        status=404,
        code="NOT_FOUND",
        why="the asset has no open share: reconcile with get_status",
    ),
    # --- site: every asset would get the same answer --------------------------------------------------------
    _row(_O.CREDENTIALS, status=401, why="ARS refused a token Keycloak just issued (another realm?)"),
    _row(_O.ROUTE_NOT_FOUND, status=_3XX, why="a redirect: ars.base_url is wrong (http for https?)"),
    _row(
        _O.DISK_FULL, code="DISK_FULL", why="site when ARS reports < ars.disk_full_room_mb free, else this asset waits"
    ),
    _row(_O.REJECTED, code="SHARE_NOT_FOUND", why="the file proxy found no share for this asset"),
    _row(_O.ROUTE_NOT_FOUND, status=404, why="every ARS has this path: ars.base_url (or a proxy) is wrong"),
    _row(
        _O.REJECTED,
        ops="delete_file",
        status=403,
        why="deleting a file in a share needs the dassco-admin role since file proxy 2.7.4",
    ),
    _row(_O.BEING_PROCESSED, status=403, message=r"Asset \S+ is already being processed", why="ARS's 300 s de-dup"),
    _row(
        _O.GROUP,
        status=403,
        message=r"Workstation \[OUT_OF_SERVICE\] is marked as out of service",
        group="workstation",
        why="mark the workstation IN_SERVICE in ARS",
    ),
    _row(
        _O.GROUP,
        status=403,
        message=r"Collection .+ does not exist within institution .+",
        group="collection",
        why="register the collection in ARS (dassco-admin)",
    ),
    _row(
        _O.WAITS,
        status=403,
        message="Asset is synchronising to specify, please await completion",
        wait_s=BUSY_WAIT_S,
        why="a Specify sync holds the record",
    ),
    _row(_O.FORBIDDEN, status=403, code=NO_CODE, why="Jersey's @RolesAllowed (or a proxy) refused: a missing role"),
    _row(
        _O.GROUP,
        ops=_ASSET_OPERATIONS,
        status=(400, 403),
        code="FORBIDDEN",
        message="(FORBIDDEN)?",
        group="collection",
        why="ARS's data rights are per collection: grant the client the rights for this asset's collection",
    ),
    _row(
        _O.FORBIDDEN,
        status=(400, 403),
        code="FORBIDDEN",
        message="(FORBIDDEN)?",
        why="a missing data right (the bare text FORBIDDEN)",
    ),
    # --- group: every asset of one workstation / collection / ... -------------------------------------------
    _row(_O.GROUP, status=400, message="Collection doesnt exist", group="collection", why="register it in ARS"),
    _row(_O.GROUP, status=400, message="Institution doesnt exist", group="institution", why="register it in ARS"),
    _row(
        _O.GROUP,
        status=400,
        message="Pipeline doesnt exist in this institution",
        group="pipeline",
        why="register the pipeline for the institution in ARS",
    ),
    _row(_O.GROUP, status=400, message="Workstation does not exist", group="workstation", why="register it in ARS"),
    _row(
        _O.GROUP,
        status=400,
        message=r"(?P<value>.+) is not a valid file format",
        group="file_format",
        why="add the format to ARS's file-format list",
    ),
    # --- asset: conflicts and waits -------------------------------------------------------------------------
    _row(_O.EXISTS, status=400, message=r"Asset \S+ already exists", why="reconcile, never create twice"),
    _row(_O.CHECKED_OUT, status=400, message="Asset is already checked out", why="a share is open already"),
    _row(
        _O.SHARE_CLOSED,
        status=400,
        message="There is no writeable directory for this asset|No writeable share for asset found"
        "|No writable directory was found for asset",
        why="the asset has no open share (synced or discarded): open one again, or reconcile with its status",
    ),
    _row(
        _O.WAITS,
        status=400,
        message=r"A share with guid \S+ is already in the process of creation",
        wait_s=SHARE_DEDUP_WAIT_S,
        why="the file proxy's 5-minute share de-dup",
    ),
    _row(_O.WAITS, status=(400, 409), message="Share is synchronizing", wait_s=BUSY_WAIT_S, why="ERDA sync queued"),
    _row(
        _O.WAITS,
        status=409,
        message="Asset has active large file uploads",
        wait_s=BUSY_WAIT_S,
        why="a TUS upload is running",
    ),
    _row(
        _O.REJECTED,
        status=400,
        code="BAD_REQUEST",
        message=r"Total size of existing asset files \(and parent folder\), exceeds requested allocation",
        why="the allocation asked is smaller than the files already there",
    ),
    _row(_O.CRC_MISMATCH, status=507, why="bytes damaged on the way; nothing stored"),
    _row(
        _O.REJECTED,
        status=500,
        message=r"Multiple writeable directories found for asset \S+ this has to be fixed manually",
        why="a human must fix the share on the file proxy",
    ),
    # --- the rest -------------------------------------------------------------------------------------------
    _row(_O.TRANSIENT, status=_RETRYABLE, why="5xx, 429, 408: retried with back-off"),
    _row(_O.REJECTED, status=_4XX, why="any other refusal concerns this asset's data"),
    _row(_O.TRANSIENT, why="an answer no row expects"),
)


def classify(answer: Answer, *, room_mb: int) -> Verdict:
    """The verdict of the first row matching ``answer``.

    DISK_FULL becomes :attr:`Outcome.DISK_FULL` (site) when ARS reports fewer than ``room_mb`` MB free or does
    not say, and :attr:`Outcome.TOO_BIG` (this asset waits) when it still has that much room — or
    :attr:`Outcome.NEVER_FITS` when the asset asks for more than the whole share disk holds.
    """
    for rule in RULES:
        found = rule.match(answer)
        if not found:
            continue
        value = found.groupdict().get("value") if isinstance(found, re.Match) else None
        outcome, wait_s = rule.outcome, rule.wait_s
        if outcome is Outcome.DISK_FULL:
            if (
                answer.requested_mb is not None
                and answer.total_mb is not None
                and answer.requested_mb > answer.total_mb
            ):
                outcome, wait_s = Outcome.NEVER_FITS, None  # however much is freed (the next asset tells the site)
            elif answer.remaining_mb is not None and answer.remaining_mb >= room_mb:
                outcome, wait_s = Outcome.TOO_BIG, TOO_BIG_WAIT_S
        return Verdict(outcome=outcome, rule=rule, group_value=value, wait_s=wait_s)
    raise AssertionError("the last rule matches every answer")  # pragma: no cover


def describe() -> str:
    """The table as markdown (header and one row per rule, in match order) for docs/."""
    lines = [
        "| # | operation | HTTP | code | message | raises | scope | meaning |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for number, rule in enumerate(RULES, 1):
        ops = ", ".join(sorted(rule.operations)) if rule.operations is not None else "any"
        code = "any" if rule.code is None else (f"`{rule.code}`" if rule.code else "(none)")
        message = (
            "any" if rule.message is None else (f"`{rule.message.pattern}`" if rule.message.pattern else "(empty)")
        )
        raises, scope = rule.outcome.raises, rule.outcome.scope
        if rule.group_kind is not None:
            raises = f"GroupHeld({rule.group_kind})"
        if rule.wait_s is not None:
            raises = f"AssetWaits({rule.wait_s:g} s)"
        if rule.outcome is Outcome.DISK_FULL:
            raises = f"ArsDiskFull; AssetWaits({TOO_BIG_WAIT_S:g} s) with room left; ArsRejected if it never fits"
            scope = "site; asset"
        cells = (str(number), ops, _describe_statuses(rule.statuses), code, message, raises, scope, rule.why)
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines)


def _describe_statuses(statuses: frozenset[int] | None) -> str:
    if statuses is None:
        return "any"
    ordered = sorted(statuses)
    runs: list[str] = []
    start = previous = ordered[0]
    for number in [*ordered[1:], None]:
        if number is not None and number == previous + 1:
            previous = number
            continue
        runs.append(str(start) if start == previous else f"{start}-{previous}")
        if number is not None:
            start = previous = number
    return ", ".join(runs)
