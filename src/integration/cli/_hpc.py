"""``integration hpc ...``: the image modules as commands, for people and for job scripts.

Each command prints a short summary, or with ``--json`` the module's full typed result (one JSON document on
stdout). Exit codes, for people and for job scripts:

* 0 done (also "no barcode found": an honest empty result);
* 1 the file cannot be used (unreadable image, a share link refused): retrying will not help;
* 2 bad usage, configuration or a missing dependency (tesseract, the ``[hpc]`` extra, an unknown institution,
  credentials refused): fix the node or the call;
* 75 (EX_TEMPFAIL) a temporary failure (the download failed, out of memory or disk): retry later;
* 70 (EX_SOFTWARE) an unexpected error: a bug, with its traceback on stderr.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import msgspec
import typer

from integration.cli._common import fail
from integration.errors import ConfigError, DataError, GroupHeld, InvalidGuid, TransientError

__all__ = ["hpc_app"]

T = TypeVar("T")

hpc_app = typer.Typer(
    name="hpc",
    help="The image modules that run on processing nodes: barcode, OCR, derivatives, download, clean-up.",
    no_args_is_help=True,
)

FileArgument = Annotated[Path, typer.Argument(help="The image file (TIFF, JPEG, PNG, or a raw: DNG, CR3, RAF ...).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the full result as JSON.")]
InstitutionOption = Annotated[
    str | None, typer.Option("--institution", "-i", help="Whose rules/languages apply (e.g. NHMD, BR, MfN).")
]


EXIT_TEMPORARY = 75
EXIT_BUG = 70


def _run(work: Callable[[], T]) -> T:
    """Run a module; turn its typed errors into the exit codes above."""
    try:
        return work()
    except ImportError as exc:  # a missing package, or a package without its C library (libzbar0)
        raise fail(f"{exc}: the image modules need pip install 'dassco-integration[hpc]' and apt libzbar0") from exc
    except (ConfigError, GroupHeld, InvalidGuid) as exc:  # InvalidGuid is a DataError, but here it is the call's
        raise fail(str(exc)) from exc
    except DataError as exc:
        raise fail(str(exc), code=1) from exc
    except TransientError as exc:
        raise fail(f"{exc} (temporary: retry later)", code=EXIT_TEMPORARY) from exc
    except MemoryError as exc:
        raise fail(
            "out of memory on this node (temporary: retry later, or on a larger node)", code=EXIT_TEMPORARY
        ) from exc
    except Exception as exc:
        traceback.print_exc()
        raise fail(f"unexpected error: {exc!r}", code=EXIT_BUG) from exc


def _emit(result: msgspec.Struct, as_json: bool, summary: Callable[[], list[str]]) -> None:
    if as_json:
        typer.echo(msgspec.json.encode(result).decode())
    else:
        for line in summary():
            typer.echo(line)


@hpc_app.command("barcode")
def barcode(
    file: FileArgument,
    institution: InstitutionOption = None,
    rules: Annotated[
        Path | None, typer.Option("--rules", help="A barcode rules TOML instead of the shipped one.")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Read every barcode; say which are the specimen's (never a guessed value; conflicts are reported)."""

    def work() -> Any:
        from integration.hpc_client.modules._barcode_rules import load_rules
        from integration.hpc_client.modules.barcode import read_barcodes_file

        return read_barcodes_file(file, institution=institution, rules=load_rules(rules))

    result = _run(work)

    def summary() -> list[str]:
        if result.barcodes:
            headline = f"{result.asset_subject} {', '.join(result.barcodes)}"
            if result.needs_review:
                headline += " — and NEEDS REVIEW: the decoders disagree on another code"
        elif result.needs_review:
            headline = "NEEDS REVIEW: the decoders disagree on a code (nothing reported)"
        elif result.codes and result.institution is None:
            headline = f"{len(result.codes)} code(s) read; give --institution to say which is the specimen's"
        elif result.codes:
            headline = f"{len(result.codes)} code(s) read, none of them a specimen code under the rules"
        else:
            headline = "no barcode found"
        lines = [f"{file.name}: {headline}"]
        for code in result.codes:
            lines.append(
                f"  {code.role:<13} {code.identifier}  ({code.symbology}, {code.found_by} pass, "
                f"{'+'.join(code.decoders)}, at {code.box[0]},{code.box[1]})"
            )
        for conflict in result.conflicts:
            lines.append(f"  CONFLICT      {' / '.join(conflict.values)} at {conflict.box[0]},{conflict.box[1]}: "
                         "decoders disagree, not reported")  # fmt: skip
        flags = f"multispecimen: {'yes' if result.MSO else 'no'}, MOS: {'yes' if result.MOS else 'no'}"
        lines.append(f"  {flags}; passes: {', '.join(result.passes)} ({result.seconds:.2f} s)")
        lines += [f"  note: {note}" for note in result.notes]
        return lines

    _emit(result, as_json, summary)


@hpc_app.command("ocr")
def ocr(
    file: FileArgument,
    institution: InstitutionOption = None,
    as_json: JsonOption = False,
) -> None:
    """Find the label regions and read them; low-confidence regions (handwriting) are flagged, not trusted."""

    def work() -> Any:
        from integration.hpc_client.modules.ocr import read_text_file

        return read_text_file(file, institution=institution)

    result = _run(work)

    def summary() -> list[str]:
        lines = [f"{file.name}: {len(result.regions)} region(s), languages {'+'.join(result.languages)}, "
                 f"{result.seconds:.1f} s"]  # fmt: skip
        for region in result.regions:
            flag = "  LOW CONFIDENCE" if region.low_confidence else ""
            lines.append(f"--- region at {region.box[0]},{region.box[1]}: confidence {region.confidence:.0f}{flag}")
            lines += [f"    {line}" for line in region.text.splitlines()]
        lines += [f"note: {note}" for note in result.notes]
        return lines

    _emit(result, as_json, summary)


@hpc_app.command("derivatives")
def derivatives(
    file: FileArgument,
    guid: Annotated[str, typer.Option("--guid", help="The parent asset's GUID (derivatives get field 10 = 1, 2).")],
    out: Annotated[Path, typer.Option("--out", help="Directory for the derivative files.")],
    metadata: Annotated[
        Path | None, typer.Option("--metadata", help="The parent's metadata JSON (v2_1_0) to derive from.")
    ] = None,
    sensor_ppi: Annotated[
        float, typer.Option("--sensor-ppi", help="Resolution when the file has no plausible tag.")
    ] = 600.0,
    no_crop: Annotated[bool, typer.Option("--no-crop", help="Do not crop.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Crop to the sheet's content and write the 400 ppi TIFF and 72 ppi JPEG derivatives with their metadata."""

    def work() -> Any:
        from integration.hpc_client.modules.derivatives import DerivativeSettings, make_derivatives_file

        parent: dict[str, Any] | None = None
        if metadata is not None:
            try:
                parent = json.loads(metadata.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ConfigError(f"--metadata {metadata}: {exc}") from exc
            if not isinstance(parent, dict):
                raise ConfigError(f"--metadata {metadata}: not a JSON object")
        settings = DerivativeSettings(sensor_ppi=sensor_ppi, crop=not no_crop)
        return make_derivatives_file(file, guid=guid, out_dir=out, metadata=parent, settings=settings)

    result = _run(work)

    def summary() -> list[str]:
        lines = [f"{file.name}: {result.source_ppi:g} ppi ({result.ppi_source}); crop: {result.crop.reason}"]
        for made in result.derivatives:
            lines.append(f"  {made.path}  {made.width}x{made.height} {made.ppi:g} ppi  {made.size_bytes} B  "
                         f"crc32 {made.crc32}")  # fmt: skip
            if made.note:
                lines.append(f"    note: {made.note}")
        return lines

    _emit(result, as_json, summary)


@hpc_app.command("download")
def download(
    url: Annotated[str, typer.Argument(help="The file's share link.")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the file.")],
    crc32: Annotated[int, typer.Option("--crc32", help="The CRC-32 the file must have (unsigned).")],
    size: Annotated[int | None, typer.Option("--size", help="The size in bytes it must have.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Fetch a file from a share link with a streamed CRC-32 check, resuming where the server allows."""

    def work() -> Any:
        from integration.hpc_client.modules.loader import download as fetch

        return fetch(url, out, expected_crc32=crc32, expected_size=size)

    result = _run(work)
    _emit(result, as_json, lambda: [f"{result.path}: {result.size_bytes} B, crc32 {result.crc32} verified"])


@hpc_app.command("cleanup")
def cleanup(
    work_dir: Annotated[Path, typer.Argument(help="The job's working directory.")],
    job_root: Annotated[Path, typer.Option("--job-root", help="Only directories inside this one are removed.")],
    as_json: JsonOption = False,
) -> None:
    """Remove a job's working files (refuses anything outside --job-root; a second run is a no-op)."""

    def work() -> Any:
        from integration.hpc_client.modules.cleanup import remove_job_files

        return remove_job_files(work_dir, job_root=job_root)

    result = _run(work)
    _emit(result, as_json, lambda: [f"{result.path}: removed {result.files} file(s), {result.bytes} B"
                                    if result.existed else f"{result.path}: already gone"])  # fmt: skip


def _read_secret(path: Path, what: str) -> str:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise fail(f"cannot read the {what} file {path}: {exc.strerror or exc}") from exc
    if not text:
        raise fail(f"the {what} file {path} is empty")
    return text


@hpc_app.command("run")
def run(
    module: Annotated[str, typer.Argument(help="The pipeline module: asset_loader, barcode, ocr, ... .")],
    job_key: Annotated[str, typer.Option("--job-key", help="The job's idempotency key (<guid>-<job>-<attempt>).")],
    server: Annotated[str, typer.Option("--server", help="The daemon's API, e.g. http://10.0.0.5:8470.")],
    token_file: Annotated[Path, typer.Option("--token-file", help="A file with this cluster's callback token.")],
    work_root: Annotated[Path, typer.Option("--work-root", help="Where the assets' working folders are made.")],
    ars_secret_file: Annotated[
        Path, typer.Option("--ars-secret-file", help="A file with this cluster's own ARS client secret.")
    ],
) -> None:
    """Run one job attempt: fetch its ticket, run the module, report started/finished/failed to the daemon."""
    from integration.hpc_client.runner import RunnerSettings, run_job

    settings = RunnerSettings(
        module=module,
        key=job_key,
        server=server,
        token=_read_secret(token_file, "callback token"),
        work_root=work_root,
        ars_secret=_read_secret(ars_secret_file, "ARS secret"),
    )
    code = run_job(settings)
    if code:
        raise typer.Exit(code)
