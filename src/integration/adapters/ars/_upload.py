"""One upload attempt: the local copy streamed from disk in chunks, its CRC-32 checked against ARS's answer."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import BinaryIO

import httpx
import trio

from integration.adapters.ars._errors import _map_httpx_errors, read_reply
from integration.adapters.ars._session import Outgoing, Session
from integration.errors import ArsCrcMismatch, DataError

__all__ = ["CHUNK_BYTES", "upload_once"]

CHUNK_BYTES = 1024 * 1024  # upload bodies are streamed from disk in pieces of this size


async def upload_once(session: Session, outgoing: Outgoing, path: Path, size: int, crc32: int) -> None:
    """PUT ``path`` once; raises ``DataError`` (local copy gone or resized) or what ARS's answer means."""
    guid = outgoing.guid
    with _map_httpx_errors(operation=outgoing.operation, guid=guid):
        file = await trio.to_thread.run_sync(_open_binary, path)
        with file:
            found = os.fstat(file.fileno()).st_size
            if found != size:
                raise DataError(f"local copy {path} has {found} bytes, {size} were recorded", guid=guid)
            response = await session.send(replace(outgoing, content=lambda: _Chunks(file, size)))
    session.checked(response, outgoing)
    reply = read_reply(response.content)  # {"expected_crc", "actual_crc"}; tolerated when absent
    if reply is not None and reply.actual_crc is not None and reply.actual_crc != crc32:
        raise ArsCrcMismatch(
            f"ARS upload_file: CRC-32 mismatch (expected {crc32}, ARS computed {reply.actual_crc})",
            status_code=response.status_code,
            guid=guid,
        )


class _Chunks(httpx.AsyncByteStream):
    """The upload body: ``size`` bytes of ``file`` from its start, ``CHUNK_BYTES`` at a time.

    Each chunk is one ``os.pread`` in a worker thread (no shared file position, so a resend after a 401 simply
    starts again at offset 0, and a file of one chunk costs one thread hop). Its own iterator rather than an
    async generator, so an upload cut short by a timeout leaves nothing half-run behind; the file itself is
    closed by :func:`upload_once`.
    """

    def __init__(self, file: BinaryIO, size: int) -> None:
        self._fd = file.fileno()
        self._size = size
        self._offset = 0

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        wanted = min(CHUNK_BYTES, self._size - self._offset)
        if wanted <= 0:
            raise StopAsyncIteration
        chunk = await trio.to_thread.run_sync(os.pread, self._fd, wanted, self._offset)
        if not chunk:  # the file shrank after its size was checked: the short body fails the request
            raise StopAsyncIteration
        self._offset += len(chunk)
        return chunk


def _open_binary(path: Path) -> BinaryIO:
    return path.open("rb")
