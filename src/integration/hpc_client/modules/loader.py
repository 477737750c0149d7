"""The asset loader's download: a file from its share link, streamed to disk with a CRC-32 check.

The file grows under ``<name>.partial``; an interrupted download resumes where it stopped when the server honours
``Range`` (206 with the right ``Content-Range``), and starts again otherwise. Only a file whose CRC-32 (and size,
when known) match is renamed to its final name: a node never works on a wrong or truncated copy.
"""

from __future__ import annotations

import time
import zlib
from pathlib import Path

import httpx
import msgspec

from integration.errors import ConfigError, DownloadFailed, DownloadRefused

from ._checksum import CHUNK, size_and_crc32

__all__ = ["Download", "download"]


class Download(msgspec.Struct, frozen=True, kw_only=True):
    path: str
    size_bytes: int
    crc32: int
    resumed_from: int  # bytes already on disk that the last attempt kept (0: from the start)
    attempts: int
    seconds: float


def download(
    url: str,
    destination: Path,
    *,
    expected_crc32: int,
    expected_size: int | None = None,
    headers: dict[str, str] | None = None,
    attempts: int = 3,
    timeout_s: float = 60.0,
    backoff_s: float = 1.0,
    client: httpx.Client | None = None,
) -> Download:
    """Fetch ``url`` into ``destination``; raises :class:`DownloadFailed` (retry later),
    :class:`DownloadRefused` (a 4xx or a malformed link: the link itself is wrong) or :class:`ConfigError` (401/407:
    the node's credentials are refused, which every download would meet)."""
    started = time.perf_counter()
    partial = destination.with_name(destination.name + ".partial")
    destination.parent.mkdir(parents=True, exist_ok=True)
    if _complete_already(partial, expected_crc32, expected_size):
        partial.replace(destination)  # an earlier run fetched it all and stopped before the rename
        size = destination.stat().st_size
        return Download(path=str(destination), size_bytes=size, crc32=expected_crc32, resumed_from=size,
                        attempts=0, seconds=round(time.perf_counter() - started, 3))  # fmt: skip
    owns_client = client is None
    http = client or httpx.Client(timeout=timeout_s, follow_redirects=True)
    last_error: Exception | None = None
    try:
        for attempt in range(1, attempts + 1):
            if attempt > 1:
                time.sleep(backoff_s * 2 ** (attempt - 2))
            try:
                kept, size, crc = _fetch(http, url, partial, headers or {})
            except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
                raise DownloadRefused(f"{url}: not a usable link: {exc}", status_code=0, url=url) from exc
            except (httpx.HTTPError, OSError, _ServerError) as exc:
                last_error = exc
                continue
            if crc != expected_crc32 or (expected_size is not None and size != expected_size):
                partial.unlink(missing_ok=True)
                last_error = DownloadFailed(
                    f"{url}: got {size} bytes with CRC-32 {crc}, expected "
                    f"{expected_size if expected_size is not None else '?'} bytes with CRC-32 {expected_crc32}"
                )
                continue
            partial.replace(destination)
            return Download(path=str(destination), size_bytes=size, crc32=crc, resumed_from=kept,
                            attempts=attempt, seconds=round(time.perf_counter() - started, 3))  # fmt: skip
    finally:
        if owns_client:
            http.close()
    if isinstance(last_error, DownloadFailed):
        raise last_error
    raise DownloadFailed(f"{url}: download failed after {attempts} attempt(s): {last_error}") from last_error


class _ServerError(Exception):
    pass


def _complete_already(partial: Path, expected_crc32: int, expected_size: int | None) -> bool:
    """A partial of the expected size and CRC-32 (a run that died before its rename) needs no download."""
    if expected_size is None or not partial.exists() or partial.stat().st_size != expected_size:
        return False
    return size_and_crc32(partial) == (expected_size, expected_crc32)


def _fetch(http: httpx.Client, url: str, partial: Path, headers: dict[str, str]) -> tuple[int, int, int]:
    """Stream ``url`` into ``partial``, resuming if the server agrees, computing the CRC-32 as the bytes arrive;
    returns the bytes kept from before, and the whole file's size and CRC-32."""
    have = partial.stat().st_size if partial.exists() else 0
    request_headers = {**headers, "Accept-Encoding": "identity"}  # offsets count stored bytes, not decoded ones
    if have:
        request_headers["Range"] = f"bytes={have}-"
    with http.stream("GET", url, headers=request_headers) as response:
        if response.status_code == 416 and have:  # our partial is complete or longer than the file: start again
            partial.unlink()
            raise _ServerError("range not satisfiable; starting again")
        if response.status_code in (401, 407):  # our credentials, not the asset: every download gets this
            raise ConfigError(f"{url}: HTTP {response.status_code}: the share refuses this node's credentials")
        if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
            raise DownloadRefused(f"{url}: HTTP {response.status_code}", status_code=response.status_code, url=url)
        if response.status_code >= 400:
            raise _ServerError(f"HTTP {response.status_code}")
        content_range = response.headers.get("content-range", "")
        # a server that compresses anyway (ignoring "identity"): its bytes are decoded, and offsets into them
        # cannot be resumed
        encoded = response.headers.get("content-encoding", "identity").strip().lower() not in ("", "identity")
        resumed = (
            have > 0 and response.status_code == 206 and not encoded and content_range.startswith(f"bytes {have}-")
        )
        if response.status_code == 206 and not resumed:  # a range we did not ask for: nothing to build on
            partial.unlink(missing_ok=True)
            raise _ServerError(f"unexpected partial content ({content_range!r}); starting again")
        size, crc = size_and_crc32(partial) if resumed else (0, 0)
        with partial.open("ab" if resumed else "wb") as handle:
            for chunk in response.iter_bytes(CHUNK) if encoded else response.iter_raw(CHUNK):
                handle.write(chunk)
                crc = zlib.crc32(chunk, crc)
                size += len(chunk)
    return (have if resumed else 0), size, crc & 0xFFFFFFFF
