"""plan_session: every bad-input case becomes a rejection with a plain reason, and never blocks its neighbours."""

from __future__ import annotations

import errno
import json
import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from integration.adapters.ndrive import (
    IntakeRejection,
    IntakeRules,
    SessionPlan,
    plan_session,
    write_error_note,
    write_session_note,
)
from integration.adapters.ndrive import _content as content_module
from integration.adapters.ndrive import _plan as plan_module
from integration.adapters.ndrive import _validate as validate_module
from integration.config import parse_config
from integration.domain import REQUIRED_FIELDS, DasscoGuid, FileKind
from integration.errors import NdriveUnavailable, TransientError

TIFF = b"II*\x00\x08\x00\x00\x00" + b"\x00" * 56
WORKSTATION = "WORKHERB0001"
PIPELINE = "PIPEHERB0001"


def make_guid(number: int) -> str:
    """A valid DaSSCo GUID, distinct for each ``number``."""
    taken = datetime(2024, 5, 17, 10, 30, number % 60)
    return str(DasscoGuid.build(taken, institution=2, collection=3, workstation=4, random=number))


def metadata(guid: str, **overrides: Any) -> dict[str, Any]:
    """A metadata document with every required field set."""
    document: dict[str, Any] = {
        "asset_guid": guid,
        "institution": "NHMD",
        "collection": "Vascular plants",
        "pipeline_name": PIPELINE,
        "workstation_name": WORKSTATION,
        "file_format": "tif",
        "date_asset_taken": "2024-05-17T10:30:00+02:00",
        "digitiser": "A. Digitiser",
        "payload_type": ["image"],
    }
    assert set(REQUIRED_FIELDS) <= set(document)
    document.update(overrides)
    return document


def write_asset(
    session: Path, guid: str, *, image: bytes = TIFF, ext: str = "tif", raws: tuple[str, ...] = ("cr3",), **meta: Any
) -> None:
    """Write ``<guid>.json``, ``<guid>.<ext>`` and raw siblings into ``session``."""
    (session / f"{guid}.json").write_text(json.dumps(metadata(guid, **meta)))
    (session / f"{guid}.{ext}").write_bytes(image)
    for raw in raws:
        (session / f"{guid}.{raw}").write_bytes(b"raw bytes of " + raw.encode())


@pytest.fixture
def rules(tmp_path: Path) -> IntakeRules:
    """Rules with one pipeline, one workstation and an institution list."""
    return IntakeRules(
        ndrive_root=tmp_path / "ndrive",
        pipelines=frozenset({PIPELINE}),
        workstations=frozenset({WORKSTATION}),
        institutions=frozenset({"NHMD", "NHMA"}),
        raw_extensions=frozenset({"dng", "cr3", "cr2", "raf"}),
    )


GOOD = make_guid(1)
BAD = make_guid(2)


@pytest.fixture
def session(rules: IntakeRules) -> Path:
    """A session folder that already holds one good asset (GOOD)."""
    folder = rules.ndrive_root / WORKSTATION / "20240517_session"
    folder.mkdir(parents=True)
    write_asset(folder, GOOD)
    return folder


def only_rejection(plan: SessionPlan, name: str) -> IntakeRejection:
    """Assert GOOD is still a candidate and ``name`` is the one rejection; return it."""
    assert [c.guid for c in plan.candidates] == [GOOD]
    assert [r.name for r in plan.rejections] == [name]
    return plan.rejections[0]


def test_good_asset_is_a_candidate_with_all_its_files(session: Path, rules: IntakeRules) -> None:
    """A complete asset becomes a candidate listing its JSON, image and raw files with their kinds."""
    plan = plan_session(session, rules)
    assert plan.rejections == ()
    (candidate,) = plan.candidates
    assert candidate.metadata.metadata.asset_guid == GOOD
    assert candidate.files() == [
        (session / f"{GOOD}.json", FileKind.METADATA),
        (session / f"{GOOD}.tif", FileKind.IMAGE),
        (session / f"{GOOD}.cr3", FileKind.RAW),
    ]


def test_malformed_json_is_rejected(session: Path, rules: IntakeRules) -> None:
    """A JSON file that does not parse rejects its asset and says so."""
    write_asset(session, BAD)
    (session / f"{BAD}.json").write_text('{"asset_guid": ')
    rejection = only_rejection(plan_session(session, rules), BAD)
    assert "not valid JSON" in rejection.reason
    assert rejection.guid == BAD
    assert set(rejection.paths) == {session / f"{BAD}.json", session / f"{BAD}.tif", session / f"{BAD}.cr3"}


def test_missing_required_fields_are_named(session: Path, rules: IntakeRules) -> None:
    """A JSON without required fields is rejected and the reason names each missing field."""
    write_asset(session, BAD, pipeline_name="", digitiser=None)
    rejection = only_rejection(plan_session(session, rules), BAD)
    assert "pipeline_name" in rejection.reason
    assert "digitiser" in rejection.reason


def test_asset_guid_different_from_file_name_is_rejected(session: Path, rules: IntakeRules) -> None:
    """asset_guid in the JSON must equal the file stem."""
    write_asset(session, BAD, asset_guid=make_guid(3))
    rejection = only_rejection(plan_session(session, rules), BAD)
    assert "asset_guid" in rejection.reason
    assert make_guid(3) in rejection.reason


def test_invalid_guid_stem_is_rejected_with_the_parse_reason(session: Path, rules: IntakeRules) -> None:
    """Files whose stem is not a DaSSCo GUID are rejected, quoting why the GUID is invalid."""
    write_asset(session, "IMG_0042", asset_guid="IMG_0042")
    rejection = only_rejection(plan_session(session, rules), "IMG_0042")
    assert "not a DaSSCo GUID" in rejection.reason
    assert "dash-separated" in rejection.reason
    assert rejection.guid is None


def test_image_missing_is_rejected(session: Path, rules: IntakeRules) -> None:
    """A JSON without its ``<guid>.<file_format>`` image is rejected, naming the expected file."""
    write_asset(session, BAD)
    (session / f"{BAD}.tif").unlink()
    rejection = only_rejection(plan_session(session, rules), BAD)
    assert f"No image file {BAD}.tif" in rejection.reason


def test_json_missing_is_rejected(session: Path, rules: IntakeRules) -> None:
    """Image and raw files without a ``<guid>.json`` are rejected as one asset without metadata."""
    write_asset(session, BAD)
    (session / f"{BAD}.json").unlink()
    rejection = only_rejection(plan_session(session, rules), BAD)
    assert f"No metadata file {BAD}.json" in rejection.reason
    assert set(rejection.paths) == {session / f"{BAD}.tif", session / f"{BAD}.cr3"}


def test_empty_image_is_rejected(session: Path, rules: IntakeRules) -> None:
    """A 0-byte image is rejected as empty."""
    write_asset(session, BAD, image=b"")
    rejection = only_rejection(plan_session(session, rules), BAD)
    assert "empty (0 bytes)" in rejection.reason
    assert f"{BAD}.tif" in rejection.reason


def test_empty_json_is_rejected(session: Path, rules: IntakeRules) -> None:
    """A 0-byte metadata JSON is rejected as empty."""
    write_asset(session, BAD)
    (session / f"{BAD}.json").write_bytes(b"")
    rejection = only_rejection(plan_session(session, rules), BAD)
    assert "metadata file" in rejection.reason
    assert "empty (0 bytes)" in rejection.reason


@pytest.mark.parametrize(
    ("file_format", "ext", "content", "expected"),
    [
        ("tif", "tif", b"\xff\xd8\xff\xe0 a jpeg really", "not a TIFF file"),
        ("jpeg", "jpeg", TIFF, "not a JPEG file"),
        ("png", "png", b"GIF89a.........", "not a PNG file"),
        ("tif", "tif", b"II", "not a TIFF file"),
    ],
)
def test_content_not_matching_file_format_is_rejected(
    session: Path, rules: IntakeRules, file_format: str, ext: str, content: bytes, expected: str
) -> None:
    """An image whose first bytes do not match its file_format is rejected."""
    write_asset(session, BAD, image=content, ext=ext, file_format=file_format)
    rejection = only_rejection(plan_session(session, rules), BAD)
    assert expected in rejection.reason
    assert "file_format" in rejection.reason


def test_dng_raw_that_is_not_tiff_based_is_rejected(session: Path, rules: IntakeRules) -> None:
    """A .dng sibling is sniffed as TIFF; other raw types are not sniffed."""
    write_asset(session, BAD, raws=("dng", "raf"))
    (session / f"{BAD}.dng").write_bytes(b"definitely not a dng")
    rejection = only_rejection(plan_session(session, rules), BAD)
    assert "not a DNG (TIFF-based) file" in rejection.reason


def test_unknown_pipeline_is_rejected(session: Path, rules: IntakeRules) -> None:
    """pipeline_name must be a configured pipeline."""
    write_asset(session, BAD, pipeline_name="PIPENOPE0001")
    rejection = only_rejection(plan_session(session, rules), BAD)
    assert "pipeline_name 'PIPENOPE0001'" in rejection.reason
    assert PIPELINE in rejection.reason


def test_unknown_workstation_is_rejected(session: Path, rules: IntakeRules) -> None:
    """workstation_name must be a configured workstation."""
    write_asset(session, BAD, workstation_name="WORKNOPE0001")
    rejection = only_rejection(plan_session(session, rules), BAD)
    assert "workstation_name 'WORKNOPE0001'" in rejection.reason


def test_unknown_institution_is_rejected_when_institutions_are_listed(session: Path, rules: IntakeRules) -> None:
    """institution must be listed when the rules list institutions."""
    write_asset(session, BAD, institution="XXXX")
    rejection = only_rejection(plan_session(session, rules), BAD)
    assert "institution 'XXXX'" in rejection.reason


def test_any_institution_is_accepted_when_none_are_listed(session: Path, rules: IntakeRules) -> None:
    """An empty institution list accepts any institution."""
    write_asset(session, BAD, institution="XXXX")
    plan = plan_session(session, IntakeRules(**{**_fields(rules), "institutions": frozenset()}))
    assert {c.guid for c in plan.candidates} == {GOOD, BAD}


def test_several_metadata_problems_are_reported_together(session: Path, rules: IntakeRules) -> None:
    """Unknown pipeline and workstation are both named in one reason."""
    write_asset(session, BAD, pipeline_name="P1", workstation_name="W1")
    reason = only_rejection(plan_session(session, rules), BAD).reason
    assert "pipeline_name 'P1'" in reason
    assert "workstation_name 'W1'" in reason


def test_unsupported_file_format_is_rejected(session: Path, rules: IntakeRules) -> None:
    """A file_format that is neither an image nor a raw type is rejected by name."""
    write_asset(session, BAD, file_format="bmp")
    reason = only_rejection(plan_session(session, rules), BAD).reason
    assert "file_format 'bmp'" in reason


@pytest.mark.parametrize(
    ("name", "cause"),
    [("a..b.tif", "'..'"), ("back\\slash.tif", "backslash"), ("bell\x07.tif", "control character")],
)
def test_unsafe_file_name_is_rejected_under_its_own_name(
    session: Path, rules: IntakeRules, name: str, cause: str
) -> None:
    """A file name with '..', a backslash or a control character is rejected on its own."""
    (session / name).write_bytes(TIFF)
    rejection = only_rejection(plan_session(session, rules), name)
    assert cause in rejection.reason
    assert rejection.paths == (session / name,)


def test_undecodable_file_name_is_rejected_and_noted(session: Path, rules: IntakeRules) -> None:
    """A name that is not valid UTF-8 is rejected on its own, and a note about it can be written."""
    raw_name = os.fsencode(session) + b"/scan\xff.tif"
    with open(raw_name, "wb") as handle:
        handle.write(TIFF)
    name = os.fsdecode(b"scan\xff.tif")
    rejection = only_rejection(plan_session(session, rules), name)
    assert "not valid UTF-8" in rejection.reason
    note = write_error_note(session, rejection)
    assert note.name == "scan_.tif.error.txt"
    assert "scan\\udcff.tif" in note.read_text(encoding="utf-8")


def test_symlink_loop_is_rejected(session: Path, rules: IntakeRules) -> None:
    """A symlink that points to itself is rejected, not followed forever."""
    (session / "loop.tif").symlink_to(session / "loop.tif")
    rejection = only_rejection(plan_session(session, rules), "loop.tif")
    assert "symbolic link" in rejection.reason


def test_symlink_leaving_the_ndrive_is_rejected(session: Path, rules: IntakeRules, tmp_path: Path) -> None:
    """A symlink whose target is outside the N-Drive root is rejected and not followed."""
    outside = tmp_path / "secret.tif"
    outside.write_bytes(TIFF)
    (session / "linked.tif").symlink_to(outside)
    rejection = only_rejection(plan_session(session, rules), "linked.tif")
    assert "outside the N-Drive" in rejection.reason
    assert rejection.paths == (session / "linked.tif",)


def test_asset_whose_image_is_a_symlink_leaving_the_ndrive_is_rejected(
    session: Path, rules: IntakeRules, tmp_path: Path
) -> None:
    """When the image is such a symlink, the link is rejected and the asset lacks its image."""
    outside = tmp_path / "secret.tif"
    outside.write_bytes(TIFF)
    write_asset(session, BAD, raws=())
    (session / f"{BAD}.tif").unlink()
    (session / f"{BAD}.tif").symlink_to(outside)
    plan = plan_session(session, rules)
    assert [c.guid for c in plan.candidates] == [GOOD]
    reasons = {r.name: r.reason for r in plan.rejections}
    assert "outside the N-Drive" in reasons[f"{BAD}.tif"]
    assert "No image file" in reasons[BAD]


def test_symlink_inside_the_ndrive_is_followed(session: Path, rules: IntakeRules) -> None:
    """A symlink to a file elsewhere on the N-Drive counts as that file."""
    elsewhere = rules.ndrive_root / "shared.tif"
    elsewhere.write_bytes(TIFF)
    write_asset(session, BAD)
    (session / f"{BAD}.tif").unlink()
    (session / f"{BAD}.tif").symlink_to(elsewhere)
    assert {c.guid for c in plan_session(session, rules).candidates} == {GOOD, BAD}


def test_broken_symlink_is_rejected(session: Path, rules: IntakeRules) -> None:
    """A symlink to nothing is rejected under its own name."""
    (session / "dangling.tif").symlink_to(session / "nowhere.tif")
    rejection = only_rejection(plan_session(session, rules), "dangling.tif")
    assert "target cannot be found" in rejection.reason


def test_subfolder_is_rejected_and_not_entered(session: Path, rules: IntakeRules) -> None:
    """A folder inside a session is rejected with a reason and its content is not planned."""
    inner = session / "more"
    inner.mkdir()
    write_asset(inner, BAD)
    rejection = only_rejection(plan_session(session, rules), "more")
    assert "folder inside the session folder" in rejection.reason


def test_pipe_is_rejected_without_being_opened(session: Path, rules: IntakeRules) -> None:
    """A named pipe is rejected as not a regular file (opening it would block)."""
    os.mkfifo(session / f"{BAD}.tif")
    rejection = only_rejection(plan_session(session, rules), f"{BAD}.tif")
    assert "not a regular file" in rejection.reason


def test_stray_file_with_unknown_type_does_not_block_its_asset(session: Path, rules: IntakeRules) -> None:
    """A stray ``<guid>.txt`` next to a valid asset is rejected alone; the asset stays a candidate."""
    (session / f"{GOOD}.txt").write_text("notes")
    rejection = only_rejection(plan_session(session, rules), f"{GOOD}.txt")
    assert "'.txt'" in rejection.reason
    assert rejection.guid is None


def test_file_without_extension_is_rejected(session: Path, rules: IntakeRules) -> None:
    """A file without any extension is a stray."""
    (session / "README").write_text("hello")
    rejection = only_rejection(plan_session(session, rules), "README")
    assert "no type" in rejection.reason


def test_other_image_type_next_to_asset_is_rejected_alone(session: Path, rules: IntakeRules) -> None:
    """A ``<guid>.jpg`` next to a tif asset is not part of it and is rejected on its own."""
    (session / f"{GOOD}.jpg").write_bytes(b"\xff\xd8\xff\xe0")
    rejection = only_rejection(plan_session(session, rules), f"{GOOD}.jpg")
    assert "not part of asset" in rejection.reason


def test_hidden_files_and_our_notes_are_ignored(session: Path, rules: IntakeRules) -> None:
    """Dot-files and ``*.error.txt`` notes produce neither candidates nor rejections."""
    (session / ".DS_Store").write_bytes(b"junk")
    (session / f"{BAD}.error.txt").write_text("an earlier note")
    plan = plan_session(session, rules)
    assert [c.guid for c in plan.candidates] == [GOOD]
    assert plan.rejections == ()


def test_extensions_match_case_insensitively_and_tiff_equals_tif(session: Path, rules: IntakeRules) -> None:
    """``.TIF``, ``.tiff`` and ``.JSON`` are accepted; file_format ``tif`` matches a ``.tiff`` image."""
    write_asset(session, BAD, ext="TIFF", raws=("CR3",))
    (session / f"{BAD}.json").rename(session / f"{BAD}.JSON")
    plan = plan_session(session, rules)
    assert plan.rejections == ()
    candidate = next(c for c in plan.candidates if c.guid == BAD)
    assert candidate.image_path.name == f"{BAD}.TIFF"
    assert candidate.raw_paths == (session / f"{BAD}.CR3",)


def test_two_images_for_one_asset_are_rejected(session: Path, rules: IntakeRules) -> None:
    """``<guid>.tif`` and ``<guid>.tiff`` together are ambiguous."""
    write_asset(session, BAD)
    (session / f"{BAD}.tiff").write_bytes(TIFF)
    assert "Several files could be the image" in only_rejection(plan_session(session, rules), BAD).reason


def test_raw_file_format_is_the_image(session: Path, rules: IntakeRules) -> None:
    """With file_format raf the .raf file is the image, not a raw sibling."""
    write_asset(session, BAD, image=b"FUJIFILMCCD-RAW", ext="raf", raws=(), file_format="raf")
    candidate = next(c for c in plan_session(session, rules).candidates if c.guid == BAD)
    assert candidate.image_path.name == f"{BAD}.raf"
    assert candidate.raw_paths == ()


def test_missing_session_folder_raises_transient(rules: IntakeRules) -> None:
    """Only a session folder that cannot be listed raises, as TransientError."""
    with pytest.raises(TransientError, match="gone"):
        plan_session(rules.ndrive_root / "gone", rules)


def test_rules_from_config() -> None:
    """IntakeRules.from_config takes the root, pipelines, workstations and intake lists from the config."""
    config = parse_config(
        """
        [ndrive]
        root = "/mnt/ndrive"
        workstations = ["WORKHERB0001"]
        [storage]
        root = "/var/lib/integration"
        database = "/var/lib/integration/track.sqlite3"
        [ars]
        base_url = "https://ars.example"
        token_url = "https://ars.example/token"
        client_id = "integration"
        [pipelines.PIPEHERB0001]
        jobs = [["barcode"]]
        [intake]
        institutions = ["NHMD"]
        raw_extensions = ["CR3", ".dng"]
        """
    )
    rules = IntakeRules.from_config(config)
    assert rules.ndrive_root == Path("/mnt/ndrive")
    assert rules.pipelines == {"PIPEHERB0001"}
    assert rules.workstations == {"WORKHERB0001"}
    assert rules.institutions == {"NHMD"}
    assert rules.raw_extensions == {"cr3", "dng"}


_NAME_CHARS = st.sampled_from(["a", "B", ".", "..", "-", "_", "\\", "\x01", " ", GOOD, "json", "tif", "cr3", "é"])
#: Contents that once made planning raise instead of reject (STYLE §9.4), mixed with arbitrary bytes.
_NASTY_CONTENT = [
    b"[" * 5000 + b"]" * 5000,
    b'{"asset_guid": "\xff"}',
    b"\xef\xbb\xbf{}",
    b'{"n": ' + b"9" * 5000 + b"}",
    json.dumps(metadata(GOOD)).encode().replace(b'"payload_type"', b'"deep": ' + b"[" * 40 + b"]" * 40 + b', "p"'),
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    names=st.lists(st.lists(_NAME_CHARS, min_size=1, max_size=5).map("".join), max_size=6),
    content=st.binary(max_size=16) | st.sampled_from(_NASTY_CONTENT),
)
def test_plan_never_raises_on_arbitrary_files(rules: IntakeRules, names: list[str], content: bytes) -> None:
    """Whatever files a session holds, plan_session returns a plan and every file is accounted for."""
    with tempfile.TemporaryDirectory(dir=rules.ndrive_root.parent) as scratch:
        folder = Path(scratch)
        for name in {n for n in names if n not in (".", "..")}:
            (folder / name).write_bytes(content)
        plan = plan_session(folder, rules)
    assert plan.folder_problem is None
    planned = {p for c in plan.candidates for p, _ in c.files()} | {p for r in plan.rejections for p in r.paths}
    expected = {folder / n for n in names if n not in (".", "..") and not n.startswith(".")}
    expected = {p for p in expected if not p.name.lower().endswith(".error.txt")}
    assert planned == expected


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b'{"asset_guid": "\xff\xfe"}', "not UTF-8 text (invalid byte 0xff at position 16)"),
        (b"[" * 5000 + b"]" * 5000, "nested too deeply"),
        (b'{"a":' * 3000 + b"1" + b"}" * 3000, "nested too deeply"),
        (b"\xef\xbb\xbf{}", "byte order mark"),
    ],
)
def test_metadata_that_crashed_the_decoder_rejects_only_its_asset(
    session: Path, rules: IntakeRules, content: bytes, words: str
) -> None:
    """A metadata JSON with invalid UTF-8, deep nesting or a BOM rejects its asset; the others are unaffected."""
    write_asset(session, BAD)
    (session / f"{BAD}.json").write_bytes(content)
    rejection = only_rejection(plan_session(session, rules), BAD)
    assert words in rejection.reason
    assert f"The metadata file {BAD}.json cannot be used" in rejection.reason
    assert rejection.guid == BAD


def test_unexpected_error_in_one_asset_rejects_only_that_asset(
    session: Path, rules: IntakeRules, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Anything unexpected raised while examining one asset becomes its rejection, naming the stem and the error."""
    original = content_module.check_content

    def failing_for_bad(path: Path, extension: str, size: int) -> None:
        if path.stem == BAD:
            raise RecursionError("maximum recursion depth exceeded")
        original(path, extension, size)

    monkeypatch.setattr(validate_module, "check_content", failing_for_bad)
    write_asset(session, BAD)
    rejection = only_rejection(plan_session(session, rules), BAD)
    assert rejection.reason.startswith(f"{BAD} could not be examined: an unexpected error occurred (RecursionError")
    assert "tell the data manager" in rejection.reason
    assert set(rejection.paths) == {session / f"{BAD}.json", session / f"{BAD}.tif", session / f"{BAD}.cr3"}
    assert rejection.guid == BAD


def test_unexpected_error_outside_any_asset_rejects_the_folder(
    session: Path, rules: IntakeRules, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unexpected failure at the folder level returns a plan with a folder_problem instead of raising."""

    def broken_scan(folder: Path, root: Path) -> None:
        raise RuntimeError("a bug in the scanner")

    monkeypatch.setattr(plan_module, "scan_session", broken_scan)
    plan = plan_session(session, rules)
    assert plan.candidates == ()
    assert plan.rejections == ()
    assert plan.folder_problem is not None
    assert plan.folder_problem.startswith("The session folder 20240517_session could not be examined")
    assert "RuntimeError: a bug in the scanner" in plan.folder_problem
    assert "Nothing in this folder was imported" in plan.folder_problem
    note = write_session_note(session, plan.folder_problem)
    assert "a bug in the scanner" in note.read_text(encoding="utf-8")


def test_good_plan_has_no_folder_problem(session: Path, rules: IntakeRules) -> None:
    """A folder that could be examined has folder_problem None."""
    assert plan_session(session, rules).folder_problem is None


@pytest.mark.parametrize("code", [errno.EIO, errno.ESTALE, errno.ENOTCONN, errno.ETIMEDOUT])
def test_mount_error_listing_the_session_raises_ndrive_unavailable(
    session: Path, rules: IntakeRules, monkeypatch: pytest.MonkeyPatch, code: int
) -> None:
    """A mount-level errno while listing the session pauses the intake instead of becoming a folder problem."""

    def failing_scandir(path: object) -> None:
        raise OSError(code, os.strerror(code), str(path))

    monkeypatch.setattr(os, "scandir", failing_scandir)
    with pytest.raises(NdriveUnavailable, match="check the mount") as caught:
        plan_session(session, rules)
    assert caught.value.lane == "intake"
    assert caught.value.path == str(session)


def test_mount_error_reading_one_file_raises_ndrive_unavailable(
    session: Path, rules: IntakeRules, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EIO while reading an asset's file is the mount's fault: it pauses the intake rather than rejecting the asset."""

    def failing_read(fd: int, count: int) -> bytes:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(os, "read", failing_read)
    with pytest.raises(NdriveUnavailable, match=r"Input/output error\): check the mount"):
        plan_session(session, rules)


def test_other_error_reading_one_file_still_rejects_that_asset(
    session: Path, rules: IntakeRules, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A permission problem on one asset's file rejects that asset only, with the OS's reason."""
    write_asset(session, BAD)
    original = os.read
    bad_json = os.open(session / f"{BAD}.json", os.O_RDONLY)
    bad_ino = os.fstat(bad_json).st_ino
    os.close(bad_json)

    def failing_for_bad(fd: int, count: int) -> bytes:
        if os.fstat(fd).st_ino == bad_ino:
            raise OSError(errno.EACCES, os.strerror(errno.EACCES))
        return original(fd, count)

    monkeypatch.setattr(os, "read", failing_for_bad)
    rejection = only_rejection(plan_session(session, rules), BAD)
    assert "could not be read (Permission denied)" in rejection.reason


def _fields(rules: IntakeRules) -> dict[str, Any]:
    return {name: getattr(rules, name) for name in rules.__struct_fields__}
