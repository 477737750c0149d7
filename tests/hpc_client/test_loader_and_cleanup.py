"""The asset loader's download (resume, restart, CRC-32, refusals) and the clean-up helper's safety rules."""

from __future__ import annotations

import errno
import os
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from integration.errors import ConfigError, DownloadFailed, DownloadRefused, NodeResourceError
from integration.hpc_client.modules.cleanup import remove_job_files
from integration.hpc_client.modules.loader import download

DATA = os.urandom(3_000_000)
CRC = zlib.crc32(DATA)
URL = "http://127.0.0.1:8080/file/share/asset.tif"


class _Server:
    """A file proxy stand-in: optionally honours Range, optionally cuts the first response short."""

    def __init__(self, *, ranges: bool, cut_first_at: int | None = None, status: int = 200, body: bytes = DATA):
        self.ranges, self.cut_first_at, self.status, self.body = ranges, cut_first_at, status, body
        self.requests: list[str | None] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        wanted = request.headers.get("range")
        self.requests.append(wanted)
        if self.status != 200:
            return httpx.Response(self.status, text="no")
        start = int(wanted.removeprefix("bytes=").rstrip("-")) if wanted and self.ranges else 0
        if start >= len(self.body) and wanted:
            return httpx.Response(416)
        body = self.body[start:]
        cut = self.cut_first_at if len(self.requests) == 1 else None
        headers = {"content-range": f"bytes {start}-{len(self.body) - 1}/{len(self.body)}"} if start else {}
        return httpx.Response(206 if start else 200, headers=headers, stream=_Stream(body, cut))


class _Stream(httpx.SyncByteStream):
    def __init__(self, body: bytes, cut: int | None) -> None:
        self.body, self.cut = body, cut

    def __iter__(self) -> Iterator[bytes]:
        for offset in range(0, len(self.body), 65536):
            if self.cut is not None and offset >= self.cut:
                raise httpx.ReadError("connection reset by peer")
            yield self.body[offset : offset + 65536]


def _fetch(server: _Server, destination: Path, **kwargs: object) -> object:
    client = httpx.Client(transport=httpx.MockTransport(server.handler))
    return download(URL, destination, expected_crc32=CRC, client=client, backoff_s=0, **kwargs)  # type: ignore[arg-type]


def test_a_download_is_verified_and_renamed(tmp_path: Path) -> None:
    server = _Server(ranges=True)
    result = _fetch(server, tmp_path / "asset.tif", expected_size=len(DATA))
    assert (tmp_path / "asset.tif").read_bytes() == DATA
    assert result.crc32 == CRC
    assert result.attempts == 1
    assert not (tmp_path / "asset.tif.partial").exists()


def test_an_interrupted_download_resumes_where_the_server_honours_range(tmp_path: Path) -> None:
    cut = 16 * 65536  # the stand-in sends 64 KiB chunks
    server = _Server(ranges=True, cut_first_at=cut)
    result = _fetch(server, tmp_path / "asset.tif")
    assert (tmp_path / "asset.tif").read_bytes() == DATA
    assert server.requests[0] is None
    assert server.requests[1] == f"bytes={cut}-"
    assert result.resumed_from == cut
    assert result.attempts == 2


def test_an_interrupted_download_starts_again_when_range_is_ignored(tmp_path: Path) -> None:
    server = _Server(ranges=False, cut_first_at=1_000_000)
    result = _fetch(server, tmp_path / "asset.tif")
    assert (tmp_path / "asset.tif").read_bytes() == DATA
    assert result.resumed_from == 0  # type: ignore[attr-defined]


def test_wrong_bytes_never_reach_the_final_name(tmp_path: Path) -> None:
    server = _Server(ranges=True, body=DATA[:-1] + b"\x00")
    with pytest.raises(DownloadFailed, match="CRC-32"):
        _fetch(server, tmp_path / "asset.tif")
    assert list(tmp_path.iterdir()) == []
    assert len(server.requests) == 3  # every attempt started afresh


def test_a_4xx_is_refused_at_once_and_a_5xx_is_retried(tmp_path: Path) -> None:
    refused = _Server(ranges=True, status=404)
    with pytest.raises(DownloadRefused) as caught:
        _fetch(refused, tmp_path / "asset.tif")
    assert caught.value.status_code == 404
    assert len(refused.requests) == 1
    failing = _Server(ranges=True, status=503)
    with pytest.raises(DownloadFailed, match="3 attempt"):
        _fetch(failing, tmp_path / "asset.tif")
    assert len(failing.requests) == 3
    assert not (tmp_path / "asset.tif").exists()


def test_cleanup_removes_the_job_directory_and_is_idempotent(tmp_path: Path) -> None:
    root = tmp_path / "jobs"
    work = root / "job-1"
    (work / "sub").mkdir(parents=True)
    (work / "a.tif").write_bytes(b"x" * 100)
    (work / "sub" / "b.jpg").write_bytes(b"y" * 20)
    outside = tmp_path / "precious.tif"
    outside.write_bytes(b"keep")
    (work / "link").symlink_to(outside)
    first = remove_job_files(work, job_root=root)
    assert first.existed
    assert first.files == 3
    assert first.bytes == 120
    assert not work.exists()
    assert outside.read_bytes() == b"keep"
    assert root.exists()
    again = remove_job_files(work, job_root=root)
    assert not again.existed


def test_cleanup_refuses_anything_outside_its_root(tmp_path: Path) -> None:
    root = tmp_path / "jobs"
    root.mkdir()
    elsewhere = tmp_path / "ndrive"
    elsewhere.mkdir()
    (elsewhere / "x.tif").write_bytes(b"1")
    (root / "escape").symlink_to(elsewhere)
    for target in (elsewhere, root, root / ".." / "ndrive", root / "escape"):
        with pytest.raises(ConfigError, match="refusing"):
            remove_job_files(target, job_root=root)
    assert (elsewhere / "x.tif").exists()


def test_a_partial_answer_at_the_wrong_offset_is_not_built_on(tmp_path: Path) -> None:
    """A server that answers a Range request with another range: the stale partial is dropped, the file is
    fetched whole on the next attempt, and the result is verified."""
    partial = tmp_path / "asset.tif.partial"
    partial.write_bytes(DATA[:500_000])
    calls: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.headers.get("range"))
        if request.headers.get("range"):
            return httpx.Response(
                206, headers={"content-range": f"bytes 0-99/{len(DATA)}"}, stream=_Stream(DATA[:100], None)
            )
        return httpx.Response(200, stream=_Stream(DATA, None))

    client = httpx.Client(transport=httpx.MockTransport(handler))
    result = download(URL, tmp_path / "asset.tif", expected_crc32=CRC, client=client, backoff_s=0)
    assert (tmp_path / "asset.tif").read_bytes() == DATA
    assert calls == ["bytes=500000-", None]
    assert result.resumed_from == 0


def test_a_stale_partial_from_another_file_is_caught_by_the_crc(tmp_path: Path) -> None:
    (tmp_path / "asset.tif.partial").write_bytes(os.urandom(1_000_000))  # another version's first megabyte
    server = _Server(ranges=True)
    result = _fetch(server, tmp_path / "asset.tif")
    assert (tmp_path / "asset.tif").read_bytes() == DATA
    assert server.requests == ["bytes=1000000-", None]  # resumed, failed the CRC, started again
    assert result.attempts == 2  # type: ignore[attr-defined]


def test_refused_credentials_are_the_nodes_problem_not_the_assets(tmp_path: Path) -> None:
    server = _Server(ranges=True, status=401)
    with pytest.raises(ConfigError, match="credentials"):
        _fetch(server, tmp_path / "asset.tif")
    assert len(server.requests) == 1
    forbidden = _Server(ranges=True, status=403)  # this link (a closed share): the asset's, not the site's
    with pytest.raises(DownloadRefused):
        _fetch(forbidden, tmp_path / "asset.tif")


def test_a_malformed_link_is_refused_at_once(tmp_path: Path) -> None:
    with pytest.raises(DownloadRefused, match="not a usable link"):
        download("ftp://127.0.0.1/x", tmp_path / "x", expected_crc32=0, backoff_s=0)
    with pytest.raises(DownloadRefused):
        download("http://[::1/x", tmp_path / "x", expected_crc32=0, backoff_s=0)


def test_a_complete_partial_is_renamed_without_downloading(tmp_path: Path) -> None:
    (tmp_path / "asset.tif.partial").write_bytes(DATA)
    server = _Server(ranges=True)
    result = _fetch(server, tmp_path / "asset.tif", expected_size=len(DATA))
    assert server.requests == []
    assert (tmp_path / "asset.tif").read_bytes() == DATA
    assert result.attempts == 0


def test_a_partial_longer_than_the_file_starts_again(tmp_path: Path) -> None:
    (tmp_path / "asset.tif.partial").write_bytes(DATA + b"tail")
    server = _Server(ranges=True)
    _fetch(server, tmp_path / "asset.tif")
    assert (tmp_path / "asset.tif").read_bytes() == DATA
    assert server.requests == [f"bytes={len(DATA) + 4}-", None]  # 416, then the whole file


def test_cleanup_of_a_file_is_refused_and_a_failing_disk_is_the_nodes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "jobs"
    root.mkdir()
    (root / "afile").write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        remove_job_files(root / "afile", job_root=root)
    (root / "job").mkdir()
    import shutil

    failing_error = OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(shutil, "rmtree", lambda path, onerror: onerror(os.rmdir, path, (OSError, failing_error, None)))
    with pytest.raises(NodeResourceError):
        remove_job_files(root / "job", job_root=root)


def test_a_server_that_compresses_anyway_is_decoded_and_not_resumed(tmp_path: Path) -> None:
    import gzip

    (tmp_path / "asset.tif.partial").write_bytes(DATA[:1000])
    compressed = gzip.compress(DATA)
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("accept-encoding"))
        headers = {"content-encoding": "gzip"}
        if request.headers.get("range"):
            headers["content-range"] = f"bytes 1000-{len(DATA) - 1}/{len(DATA)}"
            return httpx.Response(206, headers=headers, stream=_Stream(gzip.compress(DATA[1000:]), None))
        return httpx.Response(200, headers=headers, stream=_Stream(compressed, None))

    client = httpx.Client(transport=httpx.MockTransport(handler))
    result = download(URL, tmp_path / "asset.tif", expected_crc32=CRC, client=client, backoff_s=0)
    assert (tmp_path / "asset.tif").read_bytes() == DATA
    assert seen[0] == "identity"  # we asked for the stored bytes
    assert result.resumed_from == 0


def test_cleanup_that_leaves_something_behind_is_not_reported_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    root = tmp_path / "jobs"
    (root / "job").mkdir(parents=True)
    (root / "job" / "kept.tif").write_bytes(b"1")
    monkeypatch.setattr(shutil, "rmtree", lambda path, onerror: None)  # removes nothing, reports nothing
    with pytest.raises(NodeResourceError, match="still there"):
        remove_job_files(root / "job", job_root=root)


def test_cleanup_without_permission_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    root = tmp_path / "jobs"
    (root / "job").mkdir(parents=True)

    def denied(path: str, onerror: object) -> None:
        onerror(os.unlink, path, (PermissionError, PermissionError(13, "Permission denied"), None))  # type: ignore[operator]

    monkeypatch.setattr(shutil, "rmtree", denied)
    with pytest.raises(ConfigError, match="permissions"):
        remove_job_files(root / "job", job_root=root)
