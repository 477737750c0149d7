"""The classification table, row by row, against every message of ars-api.md §15 and the codes of §1, §2, §5.6.

Each case asks "would the next asset get the same answer?": site errors pause the lane, group answers hold a
group, everything else concerns this one asset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import msgspec
import pytest

from adapters.test_ars_fake import CONFIG, GUID
from integration.adapters.ars import describe_classification
from integration.adapters.ars._classify import RULES, Answer, Outcome, classify
from integration.adapters.ars._errors import answer_of, error_for_response, token_error, unsuccessful, verdict_for
from integration.errors import (
    ArsConflict,
    ArsCrcMismatch,
    ArsCredentialsRefused,
    ArsDiskFull,
    ArsForbidden,
    ArsRejected,
    ArsRouteNotFound,
    ArsShareClosed,
    ArsTransientError,
    AssetWaits,
    GroupHeld,
    IntegrationError,
    Scope,
)

SITE, GROUP, ASSET = Scope.SITE, Scope.GROUP, Scope.ASSET


@dataclass(frozen=True)
class Case:
    """One answer and what it must raise."""

    operation: str
    status: int
    code: str | None  # an envelope's errorCode; None: the body is ``text`` as it is
    message: str
    raises: type[IntegrationError]
    scope: Scope
    group_kind: str | None = None
    text: str = ""

    def response(self) -> httpx.Response:
        """The answer as ARS (or the file proxy) sends it."""
        request = httpx.Request("POST", f"http://ars.test/ars/api/v1/{self.operation}")
        if self.code is None:
            return httpx.Response(self.status, text=self.text, request=request)
        envelope = {"type": "Error", "protocolVersion": "1.0", "errorCode": self.code, "errorMessage": self.message}
        return httpx.Response(self.status, json=envelope, request=request)


def ars(status: int, message: str, raises: type[IntegrationError], scope: Scope, group: str | None = None) -> Case:
    """An ARS create/update refusal (errorCode FORBIDDEN for 403, BAD_REQUEST for 400)."""
    code = "FORBIDDEN" if status == 403 else "BAD_REQUEST"
    return Case("create_asset", status, code, message, raises, scope, group)


def fp(
    operation: str, status: int, code: str, message: str, raises: type[IntegrationError], scope: Scope = ASSET
) -> Case:
    """A file-proxy refusal (FP answers illegal actions with 400 + errorCode FORBIDDEN)."""
    return Case(operation, status, code, message, raises, scope)


R = ArsRejected
MULTIPLE_DIRECTORIES = f"Multiple writeable directories found for asset {GUID} this has to be fixed manually"
TOO_SMALL = "Total size of existing asset files (and parent folder), exceeds requested allocation"
SECTION_15 = [
    # ARS create/update 400
    *(
        ars(400, message, R, ASSET)
        for message in (
            "asset_guid cannot be null",
            "asset_pid cannot be null",
            "Status cannot be null",
            "Parent may not be an empty string",
            "Issue category cannot be null",
            "Issue category doesnt exists",
            "Issue status cannot be null",
            "Issue solved cannot be null",
        )
    ),
    # ARS create 400
    ars(400, f"Asset {GUID} already exists", ArsConflict, ASSET),
    ars(400, "Allocation cannot be 0", R, ASSET),
    ars(400, "Collection doesnt exist", GroupHeld, GROUP, "collection"),
    ars(400, "Institution cannot be null", R, ASSET),
    ars(400, "Collection cannot be null", R, ASSET),
    ars(400, "Institution doesnt exist", GroupHeld, GROUP, "institution"),
    ars(400, "digitiser cannot be null when creating asset", R, ASSET),
    ars(400, "Specimen id is required when attaching specimen to asset", R, ASSET),
    # ARS create/update (validateAsset) 400
    ars(400, "Asset cannot be its own parent", R, ASSET),
    ars(400, "Pipeline doesnt exist in this institution", GroupHeld, GROUP, "pipeline"),
    ars(400, "Workstation does not exist", GroupHeld, GROUP, "workstation"),
    ars(400, "HEIC is not a valid file format", GroupHeld, GROUP, "file_format"),
    ars(400, "Publisher Danbase doesnt exist", R, ASSET),
    ars(400, "Parent doesnt exist", R, ASSET),
    # ARS specimens 400
    *(
        ars(400, message, R, ASSET)
        for message in (
            "Specimen with id 7 doesn't exist",
            "Each asset specimen must reference an existing specimen by specimen_id or by "
            "institution/collection/barcode",
            "Specimen NHMD.Vascular plants.00012345 doesn't exist",
            "Specimen has no preparation type that matches asset preparation type: slide",
            "a specimen must have at least one preparation_type",
            "sheet is not a valid preparation_type",
        )
    ),
    # ARS create 403
    ars(403, f"Asset {GUID} is already being processed", ArsConflict, ASSET),
    ars(403, "Workstation [OUT_OF_SERVICE] is marked as out of service", GroupHeld, GROUP, "workstation"),
    ars(403, "Collection Vascular plants does not exist within institution NHMD", GroupHeld, GROUP, "collection"),
    ars(403, "FORBIDDEN", GroupHeld, GROUP, "collection"),  # data rights are per collection
    # ARS update 400 / 403
    ars(400, "asset_guid in URL must match asset_guid in POST-message", R, ASSET),
    ars(400, f"Asset {GUID} does not exist", R, ASSET),
    ars(403, "Asset is synchronising to specify, please await completion", AssetWaits, ASSET),
    ars(403, "Cannot unlock using updateAsset API, use dedicated API for unlocking", R, ASSET),
    # ARS misc 400 / 403
    *(
        ars(400, message, R, ASSET)
        for message in (
            "Asset doesnt exist!",
            "Asset doesnt exist",
            "Invalid status: DONE",
            "Audit must have a user!",
            "Asset is already deleted",
            "asset_guid is required",
            "POST request requires a body",
        )
    ),
    ars(403, "Asset is locked", R, ASSET),
    ars(403, "Asset must be complete before auditing", R, ASSET),
    ars(403, "Audit cannot be performed by the user who digitized the asset", R, ASSET),
    # ARS reference data 400 (endpoints the integration never calls; the texts still classify)
    *(
        ars(400, message, R, ASSET)
        for message in (
            "Name cannot be null or empty",
            "Institute already exists",
            "Institute doesnt exist",
            "Collection already exists in this institution",
            "A pipeline with name [PIPEHERB0001] already exists within institution [NHMD]",
            "Workstation must have a name",
            "Institution does not exist",
            "Workstation with name [WORKHERB0001] already exists in institution [NHMD]",
            "Workstation needs a STATUS to be updated",
            "Workstation doesnt exist",
            "FileFormats already exists",
        )
    ),
    # FP createShare 400 FORBIDDEN / BAD_REQUEST
    *(
        fp("open_share", 400, "FORBIDDEN", message, R)
        for message in (
            "You may only checkout one asset using this API",
            f"Asset [{GUID}] was not found",
            "Asset is locked",
            "Institution in creation object should match institution of asset with supplied guid or be set to null",
            "Collection in creation object should match collection of asset with supplied guid or be set to null",
            "Provided parent is different than the actual parent of the asset",
        )
    ),
    fp("open_share", 400, "FORBIDDEN", "Asset is already checked out", ArsConflict),
    *(
        fp("open_share", 400, "BAD_REQUEST", message, R)
        for message in (
            "Asset guid in query param doesnt match the one in the provided asset",
            "Allocation must be a positive integer",
            "You have to provide users and an asset in this call",
            "Number of assets must be one",
        )
    ),
    fp("open_share", 400, "BAD_REQUEST", f"A share with guid {GUID} is already in the process of creation", AssetWaits),
    # FP upload 400
    *(
        fp("upload_file", 400, "BAD_REQUEST", message, R)
        for message in (
            "file_size_mb cannot be 0",
            "crc cannot be 0",
            "File path cannot start with 'parent'",
            "Share directory doesnt exist",
            "Total size of asset files exceeds allocated disk space",
            "assetGuid is missing",
            "asset must have an institution",
            "asset must be in a collection",
        )
    ),
    # no open share: the asset actor opens one again (or reconciles), it is not a data error
    fp("upload_file", 400, "BAD_REQUEST", "There is no writeable directory for this asset", ArsShareClosed),
    fp("delete_file", 400, "BAD_REQUEST", "No writable directory was found for asset", ArsShareClosed),
    # FP synchronize / TUS
    fp("synchronize", 400, "BAD_REQUEST", "No writeable share for asset found", ArsShareClosed),
    fp("synchronize", 409, "CONFLICT", "Asset has active large file uploads", AssetWaits),
    fp("upload_file", 400, "BAD_REQUEST", "Upload-Length header is missing", R),
    fp("upload_file", 409, "CONFLICT", "Share is synchronizing", AssetWaits),
    # FP any
    Case("list_files", 401, "UNAUTHORIZED", "", ArsCredentialsRefused, SITE),
    fp("synchronize", 500, "INTERNAL_ERROR", MULTIPLE_DIRECTORIES, R),
    fp(
        "open_share",
        500,
        "INTERNAL_ERROR",
        "Local asset directory did not get created, check the mount",
        ArsTransientError,
    ),
]

STATUS_CODES = [
    # §1: plain / HTML answers, Spring's own errors
    Case("get_asset", 404, None, "", ArsRouteNotFound, SITE),
    Case("list_in_progress", 404, None, "", ArsRouteNotFound, SITE),
    Case("create_asset", 404, None, "", ArsRouteNotFound, SITE, text="<html><h1>404 Not Found</h1>nginx</html>"),
    Case("upload_file", 404, "NOT_FOUND", "HTTP 404 Not Found", ArsRouteNotFound, SITE),
    Case("synchronize", 404, "NOT_FOUND", "HTTP 404 Not Found", ArsRouteNotFound, SITE),
    Case("list_files", 404, "NOT_FOUND", "HTTP 404 Not Found", ArsRouteNotFound, SITE),
    Case("list_institutions", 404, None, "", ArsRouteNotFound, SITE),
    Case("list_share", 404, "NOT_FOUND", "Share directory doesnt exist", ArsShareClosed, ASSET),
    Case("get_status", 404, None, "", ArsRouteNotFound, SITE, text="<html>Not Found</html>"),
    Case("create_asset", 500, None, "", ArsTransientError, ASSET, text='{"status":500,"error":"Server Error"}'),
    Case("create_asset", 502, "UPSTREAM_ERROR", "File proxy unreachable", ArsTransientError, ASSET),
    Case("get_status", 503, None, "", ArsTransientError, ASSET),
    Case("get_status", 429, None, "", ArsTransientError, ASSET),
    Case("upload_file", 507, None, "", ArsCrcMismatch, ASSET, text='{"expected_crc":1,"actual_crc":2}'),
    Case("synchronize", 409, "CONFLICT", "Something new", ArsRejected, ASSET),
    Case("create_asset", 418, None, "", ArsRejected, ASSET, text="no idea"),
    Case("create_asset", 301, None, "", ArsRouteNotFound, SITE),
    # §2: bearer-token failures
    Case("get_status", 401, None, "", ArsCredentialsRefused, SITE),
    Case("create_asset", 403, None, "", ArsForbidden, SITE),
    Case("list_institutions", 403, None, "", ArsForbidden, SITE, text='{"status":403,"error":"Forbidden"}'),
    Case("open_share", 400, "FORBIDDEN", "", GroupHeld, GROUP, "collection"),  # data rights are per collection
    Case("list_institutions", 403, "FORBIDDEN", "FORBIDDEN", ArsForbidden, SITE),  # no asset: every asset's
    Case("delete_file", 403, None, "", ArsRejected, ASSET),
    # anything else: an unknown refusal concerns the asset, an unknown server error is transient
    Case("create_asset", 400, "BAD_REQUEST", "A text no row knows", ArsRejected, ASSET),
    Case("create_asset", 403, "FORBIDDEN", "A refusal no row knows", ArsRejected, ASSET),
    Case("update_asset", 599, None, "", ArsTransientError, ASSET),
]


def _check(error: IntegrationError, case: Case) -> None:
    assert type(error) is case.raises, f"{case.message!r}: {error!r}"
    assert error.scope is case.scope
    assert getattr(error, "group_kind", None) == case.group_kind


@pytest.mark.parametrize("case", SECTION_15, ids=lambda case: f"{case.status}-{case.message[:50]}")
def test_every_section_15_message(case: Case) -> None:
    """Each §15 text raises the class of its scope: site, group (with its kind) or this asset alone."""
    error = error_for_response(case.response(), operation=case.operation, config=CONFIG, guid=GUID)
    _check(error, case)
    if isinstance(error, GroupHeld):
        assert error.group_value == ("HEIC" if case.group_kind == "file_format" else None)
    if isinstance(error, ArsRejected):
        assert error.error_message == case.message


@pytest.mark.parametrize("case", STATUS_CODES, ids=lambda case: f"{case.operation}-{case.status}-{case.code}")
def test_status_codes(case: Case) -> None:
    """The status codes of §1 and §2 (plain, HTML and Spring answers, bearer failures) land in their scope."""
    error = error_for_response(case.response(), operation=case.operation, config=CONFIG, guid=GUID)
    _check(error, case)


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        (f"Asset {GUID} already exists", "exists"),
        (f"Asset {GUID} is already being processed", "being_processed"),
        ("Asset is already checked out", "checked_out"),
    ],
)
def test_conflicts_carry_their_kind(message: str, kind: str) -> None:
    """ "already exists", "already being processed" and "already checked out" are conflicts of three kinds."""
    status = 403 if "processed" in message else 400
    error = error_for_response(
        Case("x", status, "FORBIDDEN", message, R, ASSET).response(), operation="x", config=CONFIG
    )
    assert isinstance(error, ArsConflict)
    assert error.kind == kind


@pytest.mark.parametrize(
    ("message", "wait_s"),
    [
        (f"A share with guid {GUID} is already in the process of creation", 300),
        ("Asset is synchronising to specify, please await completion", 60),
        ("Asset has active large file uploads", 60),
        ("Share is synchronizing", 60),
    ],
)
def test_waits_say_how_long(message: str, wait_s: float) -> None:
    """Answers that mean "this asset must wait" give the wait as retry_after_s."""
    status = 403 if "specify" in message else 409 if "large" in message else 400
    case = Case("x", status, "BAD_REQUEST", message, AssetWaits, ASSET)
    error = error_for_response(case.response(), operation="x", config=CONFIG, guid=GUID)
    assert isinstance(error, AssetWaits)
    assert error.retry_after_s == wait_s


# --- §2: Keycloak's token endpoint ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "raises"),
    [
        (401, {"error": "invalid_client", "error_description": "Invalid client credentials"}, ArsCredentialsRefused),
        (400, {"error": "invalid_client", "error_description": "Invalid client secret"}, ArsCredentialsRefused),
        (400, {"error": "unauthorized_client", "error_description": "Client not enabled"}, ArsCredentialsRefused),
        (400, {"error": "invalid_scope", "error_description": "Invalid scopes: openid"}, ArsCredentialsRefused),
        (404, None, ArsRouteNotFound),
        (503, None, ArsTransientError),
        (429, None, ArsTransientError),
    ],
)
def test_token_endpoint_answers(status: int, body: dict[str, str] | None, raises: type[IntegrationError]) -> None:
    """Keycloak's 401 and 400 for the client are refused credentials (site), 404 a wrong token URL, 5xx transient."""
    request = httpx.Request("POST", CONFIG.token_url)
    response = httpx.Response(status, json=body, request=request) if body else httpx.Response(status, request=request)
    error = token_error(response, config=CONFIG, secret_rereadable=True)
    assert type(error) is raises
    if isinstance(error, ArsCredentialsRefused):
        assert f"({status}: {body and body['error']})" in error.reason
        assert not error.restart_needed


# --- §5.6: allocation statuses --------------------------------------------------------------------------------


def allocation(
    status: int,
    allocation_status: str,
    *,
    remaining: float | None = 0,
    total: float | None = None,
    text: str | None = None,
    nested: bool = True,
) -> httpx.Response:
    """A create answer (asset with httpInfo, HTTP code from the allocation) or a share answer (HttpInfo itself)."""
    info: dict[str, Any] = {
        "path": None,
        "total_storage_mb": total,
        "remaining_storage_mb": remaining,
        "allocated_storage_mb": 0,
        "allocation_status_text": text,
        "http_allocation_status": allocation_status,
    }
    body = {"asset_guid": GUID, "httpInfo": info} if nested else info
    return httpx.Response(status, json=body, request=httpx.Request("POST", "http://ars.test/x"))


ALLOCATIONS = [
    ("create_asset", allocation(400, "BAD_REQUEST", text="too small"), ArsRejected, ASSET),
    ("create_asset", allocation(403, "DISK_FULL", remaining=0), ArsDiskFull, SITE),
    ("create_asset", allocation(403, "DISK_FULL", remaining=1_999), ArsDiskFull, SITE),  # below disk_full_room_mb
    ("create_asset", allocation(403, "DISK_FULL", remaining=None), ArsDiskFull, SITE),
    ("create_asset", allocation(403, "DISK_FULL", remaining=2_000), AssetWaits, ASSET),
    ("create_asset", allocation(403, "DISK_FULL", remaining=12.5), ArsDiskFull, SITE),  # a float is still read
    # 6 000 MB asked of a 5 000 MB share disk: it never fits, however much is freed
    ("create_asset", allocation(403, "DISK_FULL", remaining=4_000, total=5_000), ArsRejected, ASSET),
    ("create_asset", allocation(403, "DISK_FULL", remaining=0, total=5_000), ArsRejected, ASSET),
    ("create_asset", allocation(403, "DISK_FULL", remaining=0, total=50_000), ArsDiskFull, SITE),
    ("create_asset", allocation(404, "SHARE_NOT_FOUND"), ArsRejected, ASSET),
    ("create_asset", allocation(500, "UNKNOWN_ERROR"), ArsTransientError, ASSET),
    ("create_asset", allocation(500, "INTERNAL_ERROR"), ArsTransientError, ASSET),
    ("create_asset", allocation(503, "UPSTREAM_ERROR"), ArsTransientError, ASSET),
    ("open_share", allocation(200, "DISK_FULL", remaining=3, nested=False), ArsDiskFull, SITE),
    ("open_share", allocation(200, "DISK_FULL", remaining=5_000, nested=False), AssetWaits, ASSET),
    ("open_share", allocation(200, "BAD_REQUEST", text=TOO_SMALL, nested=False), ArsRejected, ASSET),
    ("delete_share", allocation(400, "BAD_REQUEST", text="Share is synchronizing", nested=False), AssetWaits, ASSET),
]


@pytest.mark.parametrize(("operation", "response", "raises", "scope"), ALLOCATIONS)
def test_allocation_statuses(
    operation: str, response: httpx.Response, raises: type[IntegrationError], scope: Scope
) -> None:
    """A failed allocation is an error even under HTTP 200; DISK_FULL is site-wide only below the room left."""
    assert unsuccessful(response)
    error = error_for_response(response, operation=operation, config=CONFIG, guid=GUID, requested_mb=6_000)
    assert type(error) is raises
    assert error.scope is scope


def test_disk_full_room_comes_from_the_config() -> None:
    """ars.disk_full_room_mb decides between a full disk (site) and one asset too big for what is left."""
    response = allocation(403, "DISK_FULL", remaining=150)
    assert type(error_for_response(response, operation="create_asset", config=CONFIG)) is ArsDiskFull
    small = msgspec.structs.replace(CONFIG, disk_full_room_mb=100)
    assert type(error_for_response(response, operation="create_asset", config=small)) is AssetWaits


# --- "not there" is an answer ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operation", "response"),
    [
        ("get_status", httpx.Response(404)),
        ("delete_share", allocation(404, "SHARE_NOT_FOUND", text="No share found", nested=False)),
        ("delete_file", httpx.Response(404, json={"errorCode": "NOT_FOUND", "errorMessage": "Asset file not found"})),
    ],
)
def test_absent_answers(operation: str, response: httpx.Response) -> None:
    """An unknown GUID, no open share, no such file: the operation answers None/False, nothing is raised."""
    assert verdict_for(response, operation=operation, config=CONFIG).outcome is Outcome.ABSENT


def test_success_is_not_classified() -> None:
    """A 204 (void method, or an unknown asset on GET) and a SUCCESS allocation are successes."""
    assert not unsuccessful(httpx.Response(204))
    assert not unsuccessful(allocation(200, "SUCCESS", nested=False))


# --- the table itself -----------------------------------------------------------------------------------------


def _answers() -> list[Answer]:
    cases = [*SECTION_15, *STATUS_CODES]
    answers = [answer_of(case.response(), operation=case.operation) for case in cases]
    token = httpx.Request("POST", CONFIG.token_url)
    refusals = [(401, ""), (400, "invalid_client"), (400, "unauthorized_client"), (404, ""), (503, ""), (400, "x")]
    for status, error in refusals:
        response = httpx.Response(status, json={"error": error} if error else None, request=token)
        answers.append(answer_of(response, operation="token"))
    answers += [answer_of(response, operation=operation) for operation, response, _, _ in ALLOCATIONS]
    answers += [
        answer_of(httpx.Response(404), operation="get_status"),
        answer_of(allocation(404, "SHARE_NOT_FOUND", nested=False), operation="delete_share"),
        answer_of(httpx.Response(404, json={"errorCode": "NOT_FOUND"}), operation="delete_file"),
        Answer(operation="x", status=102),
    ]
    return answers


def test_every_row_is_exercised_by_a_case() -> None:
    """No row of the table is dead: each one decides at least one answer tested here."""
    used = {id(classify(answer, room_mb=100).rule) for answer in _answers()}
    unused = [rule for rule in RULES if id(rule) not in used]
    assert unused == []


def test_describe_writes_one_markdown_row_per_rule() -> None:
    """describe() is a markdown table with a header and one row per rule, naming class, scope and group kind."""
    lines = describe_classification().splitlines()
    assert lines[0].startswith("| # | operation | HTTP | code | message | raises | scope | meaning |")
    assert len(lines) == 2 + len(RULES)
    assert all(line.count(" | ") == 7 for line in lines[2:])
    text = "\n".join(lines)
    assert "GroupHeld(file_format)" in text
    assert "ArsCredentialsRefused | site" in text
    assert "AssetWaits(300 s)" in text
