"""Reading and following log files without blocking the loop (``kubectl logs [-f] [--tail]``)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

CHUNK = 64 * 1024
POLL_SECONDS = 0.1


def _tail_offset(path: Path, lines: int) -> int:
    """Byte offset where the last ``lines`` lines start."""
    if lines <= 0:
        return os.path.getsize(path)
    with path.open("rb") as f:
        f.seek(0, os.SEEK_END)
        end = pos = f.tell()
        if end == 0:
            return 0
        f.seek(end - 1)
        count = -1 if f.read(1) == b"\n" else 0  # a final newline does not start a line
        while pos > 0:
            step = min(CHUNK, pos)
            pos -= step
            f.seek(pos)
            buf = f.read(step)
            for i in range(len(buf) - 1, -1, -1):
                if buf[i] == 10:
                    count += 1
                    if count == lines:
                        return pos + i + 1
        return 0


def _read(path: Path, offset: int) -> bytes:
    try:
        with path.open("rb") as f:
            f.seek(offset)
            return f.read(CHUNK)
    except FileNotFoundError:
        return b""


async def read_log(
    path: Path,
    *,
    follow: bool = False,
    tail_lines: int | None = None,
    done: Callable[[], bool] = lambda: True,
    start: int | None = None,
) -> AsyncIterator[bytes]:
    """Yield the file's bytes; with ``follow`` keep yielding appended bytes until ``done()`` is
    true and the file is drained (the writer -- a container -- has exited). ``start`` is a byte
    offset taken by the caller (an attach must not miss output produced while it sets up)."""
    offset = start or 0
    if start is None and tail_lines is not None and path.exists():
        offset = await asyncio.to_thread(_tail_offset, path, tail_lines)
    while True:
        data = await asyncio.to_thread(_read, path, offset)
        if data:
            offset += len(data)
            yield data
            continue
        if not follow:
            return
        if done():
            data = await asyncio.to_thread(_read, path, offset)  # last words written before exit
            if not data:
                return
            offset += len(data)
            yield data
            continue
        await asyncio.sleep(POLL_SECONDS)


def read_instance(
    path_of: Callable[[int], Path],
    count: int,
    *,
    previous: bool,
    follow: bool,
    tail_lines: int | None,
    writing: Callable[[int], bool],
    what: str,
) -> AsyncIterator[bytes]:
    """The log of a container's current instance ``count`` (its restart count), or of the one
    before with ``previous`` (never followed: it has exited). ``writing(n)``: instance ``n`` is
    still running, so a follow waits for more."""
    from centaurus.runtimes.base import RuntimeError_

    n = count - 1 if previous else count
    if n < 0:
        raise RuntimeError_("NotFound", f"{what} has no previous instance")
    return read_log(
        path_of(n), follow=follow and not previous, tail_lines=tail_lines, done=lambda: not writing(n)
    )
