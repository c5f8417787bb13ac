"""Embedded store: one SQLite file (WAL) per data partition, with etcd's revision semantics.

Layout (see ``SCHEMA``): ``history`` has one row per committed change -- its rowid *is* the
store revision, and it holds the value, so a live value is stored exactly once (in the row of its
latest change); ``kv`` maps each live key to its create/mod revision (a prefix list is a range
scan of ``kv`` joined to ``history`` by rowid); ``meta`` holds the current and compacted revision.
Compaction deletes the history rows that a later row at or before the compaction point
supersedes, plus tombstones, exactly like etcd; so reads at any kept revision stay complete.

Threads: one writer thread owns the write connection and applies queued writes in batches
(one transaction per batch, one revision per write, each future resolved only after COMMIT);
reads run on a small pool with one read connection per thread (WAL readers never block the
writer); a checkpointer thread copies the WAL into the database file so that no COMMIT pays
for it. The event loop only enqueues (the writes of one loop turn at once) and awaits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal, TypeVar

from centaurus.store.base import (
    KV,
    AlreadyExists,
    Compacted,
    Conflict,
    Event,
    FutureRevision,
    NotFound,
    StoreError,
    StoreUnavailable,
)
from centaurus.store.fanout import FanOut
from centaurus.store.keys import prefix_end
from centaurus.store.sqlite_sql import (
    PUT,
    SCHEMA,
    Checkpointer,
    compact_history,
    list_at,
    list_latest,
    read_meta,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

_SYNC_MODES = ("OFF", "NORMAL", "FULL", "EXTRA")
_MAX_BATCH = 512
_COMPACT_STEP = 5000

# One write request: (op, args, future). op in create/update/delete/compact/stop.
_Op = tuple[str, tuple[Any, ...], "asyncio.Future[Any] | None"]
# One write's outcome: (future, result, error). Module-level aliases because the class's
# ``list`` method shadows the builtin inside the class body.
_Results = list[tuple["asyncio.Future[Any] | None", Any, BaseException | None]]
_Events = list[Event]
_KVs = list[KV]


class SqliteStore:
    """``centaurus.stores`` entry point ``sqlite``.

    ``synchronous``: SQLite's setting for the WAL; ``NORMAL`` (default) survives a process crash
    but may lose the last commits on power loss (NOTES.md: ~13k sequential puts/s, p99 0.1 ms);
    ``FULL`` fsyncs every commit (~3k/s, p99 0.5-1 ms).
    """

    def __init__(
        self,
        *,
        name: str = "p0",
        path: Path | str,
        synchronous: Literal["OFF", "NORMAL", "FULL", "EXTRA"] | str = "NORMAL",
        read_threads: int = 2,
        cache_mb: int = 64,
    ) -> None:
        sync = synchronous.upper()
        if sync not in _SYNC_MODES:
            raise ValueError(f"synchronous must be one of {_SYNC_MODES}, not {synchronous!r}")
        self.name = name
        self.path = Path(path)
        self.synchronous = sync
        self._read_threads = max(1, read_threads)
        self._cache_kib = cache_mb * 1024
        self._loop: asyncio.AbstractEventLoop | None = None
        # the writer's queue carries lists of writes: everything written during one turn of the
        # event loop is handed over at once (see _write)
        self._queue: queue.SimpleQueue[list[_Op]] = queue.SimpleQueue()
        self._pending: list[_Op] = []
        self._writer: threading.Thread | None = None
        self._readers: ThreadPoolExecutor | None = None
        self._local = threading.local()
        self._read_conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._rev = 0
        self._fanout = FanOut(self._replay)
        self._closed = False

    @classmethod
    async def open_partition(cls, index: int, state_dir: Path, options: Mapping[str, Any]) -> SqliteStore:
        """One file per partition: ``<state_dir>/partition-<index>.db``."""
        store = cls(
            name=f"p{index}",
            path=Path(state_dir) / f"partition-{index}.db",
            synchronous=str(options.get("synchronous", "NORMAL")),
        )
        await store.start()
        return store

    # ---- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        if self._writer is not None:
            return
        self._closed = False
        self._loop = asyncio.get_running_loop()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        ready: asyncio.Future[int] = self._loop.create_future()
        self._writer = threading.Thread(
            target=self._writer_main, args=(ready,), name=f"sqlite-writer-{self.name}", daemon=True
        )
        self._writer.start()
        try:
            self._rev = await ready
        except BaseException:
            self._writer.join()
            self._writer = None
            raise
        self._readers = ThreadPoolExecutor(self._read_threads, thread_name_prefix=f"sqlite-read-{self.name}")
        log.debug("sqlite store %s open at %s, revision %d", self.name, self.path, self._rev)

    async def close(self) -> None:
        if self._writer is None:
            return
        self._closed = True
        self._fanout.close()
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._flush()
        self._queue.put([("stop", (), done)])
        await done
        await asyncio.to_thread(self._writer.join)
        self._writer = None
        if self._readers is not None:
            await asyncio.to_thread(self._readers.shutdown, True)
            self._readers = None
        with self._conns_lock:
            for conn in self._read_conns:
                conn.close()
            self._read_conns.clear()
        self._local = threading.local()

    # ---- reads ---------------------------------------------------------------------------------

    async def revision(self) -> int:
        self._check_open()
        return self._rev

    async def get(self, key: str) -> KV | None:
        return await self._read(self._get_sync, key)

    async def list(
        self, prefix: str, *, limit: int = 0, start_after: str | None = None, revision: int = 0
    ) -> tuple[list[KV], int, bool]:
        return await self._read(self._list_sync, prefix, limit, start_after, revision)

    def watch(self, prefix: str, from_revision: int) -> AsyncGenerator[Event, None]:
        self._check_open()
        return self._fanout.watch(prefix, from_revision)

    def watcher_count(self) -> int:
        """Open watches (for /metrics)."""
        return len(self._fanout)

    # ---- writes --------------------------------------------------------------------------------

    async def create(self, key: str, value: bytes) -> KV:
        if not key:
            raise ValueError("an empty key is not allowed")
        result: KV = await self._write("create", key, bytes(value))
        return result

    async def update(self, key: str, value: bytes, expected_revision: int) -> KV:
        result: KV = await self._write("update", key, bytes(value), expected_revision)
        return result

    async def delete(self, key: str, expected_revision: int = 0) -> KV:
        result: KV = await self._write("delete", key, expected_revision)
        return result

    async def compact(self, revision: int) -> None:
        """Compacts in steps of ``_COMPACT_STEP`` revisions, each its own short transaction in
        the writer queue, so a large compaction never stalls the writes queued behind it."""
        self._check_open()
        if revision > self._rev:
            raise FutureRevision(revision, self._rev)
        done = await self._read(self._compacted_sync)
        while done < revision:
            done = min(revision, done + _COMPACT_STEP)
            await self._write("compact", done)

    # ---- plumbing on the loop ------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._writer is None or self._closed:
            raise StoreUnavailable(f"sqlite store {self.name} is not open")

    async def _write(self, op: str, *args: Any) -> Any:
        self._check_open()
        assert self._loop is not None
        fut: asyncio.Future[Any] = self._loop.create_future()
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append((op, args, fut))
        return await fut

    def _flush(self) -> None:
        """Hand the writes of this loop turn to the writer thread in one go. One wake-up of the
        writer per turn instead of one per write: each wake-up is a thread switch and a GIL
        hand-over away from the loop, and the writes land in one transaction (group commit)."""
        if self._pending:
            self._queue.put(self._pending)
            self._pending = []

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        self._check_open()
        assert self._loop is not None and self._readers is not None
        return await self._loop.run_in_executor(self._readers, fn, *args)

    def _deliver(self, results: _Results, events: _Events, rev: int) -> None:
        """On the loop, after COMMIT: publish events, then acknowledge the writers."""
        self._rev = max(self._rev, rev)
        if events:
            self._fanout.publish(events)
        for fut, value, exc in results:
            if fut is None or fut.done():
                continue
            if exc is not None:
                fut.set_exception(exc)
            else:
                fut.set_result(value)

    # ---- read side (reader threads) ------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA query_only = 1")
            conn.execute(f"PRAGMA cache_size = -{self._cache_kib // self._read_threads}")
            conn.execute("PRAGMA mmap_size = 1073741824")
            self._local.conn = conn
            with self._conns_lock:
                self._read_conns.append(conn)
        return conn

    def _get_sync(self, key: str) -> KV | None:
        row = self._conn().execute(
            "SELECT k.create_rev, k.mod_rev, h.value FROM kv k JOIN history h ON h.rev = k.mod_rev"
            " WHERE k.key = ?",
            (key,),
        ).fetchone()
        return None if row is None else KV(key, row[2], row[0], row[1])

    def _list_sync(self, prefix: str, limit: int, start_after: str | None, revision: int
                   ) -> tuple[_KVs, int, bool]:
        if limit < 0 or revision < 0:
            raise ValueError("limit and revision must be >= 0")
        conn = self._conn()
        lo, lo_op = (prefix, ">=")
        if start_after is not None and start_after >= prefix:
            lo, lo_op = start_after, ">"
        hi = prefix_end(prefix)
        conn.execute("BEGIN")
        try:
            current, compacted = read_meta(conn)
            if revision:
                if revision < compacted:
                    raise Compacted(revision, compacted)
                if revision > current:
                    raise FutureRevision(revision, current)
            read_at = revision or current
            if revision and revision < current:
                items, more = list_at(conn, lo, lo_op, hi, limit, revision)
            else:
                items, more = list_latest(conn, lo, lo_op, hi, limit)
        finally:
            conn.execute("COMMIT")
        return items, read_at, more

    def _compacted_sync(self) -> int:
        return read_meta(self._conn())[1]

    async def _replay(self, prefix: str, after: int, limit: int) -> Sequence[Event]:
        return await self._read(self._replay_sync, prefix, after, limit)

    def _replay_sync(self, prefix: str, after: int, limit: int) -> _Events:
        conn = self._conn()
        hi = prefix_end(prefix)
        conn.execute("BEGIN")
        try:
            _, compacted = read_meta(conn)
            if after < compacted:
                raise Compacted(after, compacted)
            sql = (
                "SELECT h.rev, h.key, h.type, h.value, h.create_rev, h.prev_rev, p.value, p.create_rev"
                " FROM history h LEFT JOIN history p ON p.rev = h.prev_rev AND h.prev_rev > 0"
                " WHERE h.rev > ? AND h.key >= ?"
            )
            args: list[Any] = [after, prefix]
            if hi is not None:
                sql += " AND h.key < ?"
                args.append(hi)
            sql += " ORDER BY h.rev LIMIT ?"
            args.append(limit)
            rows = conn.execute(sql, args).fetchall()
        finally:
            conn.execute("COMMIT")
        events = []
        for rev, key, typ, value, create_rev, prev_rev, pvalue, pcreate in rows:
            prev = KV(key, pvalue, pcreate, prev_rev) if prev_rev and pvalue is not None else None
            if typ == PUT:
                events.append(Event("PUT", KV(key, value, create_rev, rev), prev))
            else:
                last = pvalue if pvalue is not None else b""
                events.append(Event("DELETE", KV(key, last, create_rev, rev), prev))
        return events

    # ---- write side (writer thread) ------------------------------------------------------------

    def _writer_main(self, ready: asyncio.Future[int]) -> None:
        loop = self._loop
        assert loop is not None
        try:
            conn = self._open_writer()
            rev = read_meta(conn)[0]
        except BaseException as exc:  # report the open failure to start()
            err = StoreUnavailable(f"cannot open {self.path}: {exc}")
            loop.call_soon_threadsafe(_settle, ready, None, err)
            return
        checkpointer = Checkpointer(self.path, self.name)
        loop.call_soon_threadsafe(_settle, ready, rev, None)
        stop_fut: asyncio.Future[Any] | None = None
        while stop_fut is None:
            batch = self._queue.get()
            while len(batch) < _MAX_BATCH:
                try:
                    batch += self._queue.get_nowait()
                except queue.Empty:
                    break
            results: _Results = []
            events: _Events = []
            start_rev = rev
            try:
                conn.execute("BEGIN IMMEDIATE")
                for op, args, fut in batch:
                    if op == "stop":
                        stop_fut = fut
                        continue
                    try:
                        value, ev, rev = self._apply(conn, op, args, rev)
                    except (StoreError, ValueError) as exc:
                        results.append((fut, None, exc))
                        continue
                    results.append((fut, value, None))
                    if ev is not None:
                        events.append(ev)
                if rev != start_rev:
                    conn.execute("UPDATE meta SET value = ? WHERE name = 'revision'", (rev,))
                conn.execute("COMMIT")
                checkpointer.notify()
            except Exception as exc:  # sqlite3.Error (disk full, I/O) or a bug: nothing of the batch stays
                log.error("sqlite store %s: batch failed: %s", self.name, exc)
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                rev = start_rev
                err = StoreUnavailable(f"sqlite store {self.name}: {exc}")
                results = [(fut, None, err) for op, _, fut in batch if op != "stop"]
                events = []
            if results or events:
                loop.call_soon_threadsafe(self._deliver, results, events, rev)
        checkpointer.close()
        conn.close()
        loop.call_soon_threadsafe(_settle, stop_fut, None, None)

    def _open_writer(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        conn.execute(f"PRAGMA cache_size = -{self._cache_kib}")
        conn.execute("PRAGMA mmap_size = 1073741824")
        # Checkpoints run on the Checkpointer thread; this is only a backstop (~80 MB of WAL).
        conn.execute("PRAGMA wal_autocheckpoint = 20000")
        conn.executescript(SCHEMA)
        return conn

    def _apply(self, conn: sqlite3.Connection, op: str, args: tuple[Any, ...], rev: int
               ) -> tuple[Any, Event | None, int]:
        """One write inside the batch transaction; checks before it writes, so a failed write
        leaves nothing behind. Returns (result, event, new revision)."""
        if op == "compact":
            compact_history(conn, args[0], rev)
            return None, None, rev
        key: str = args[0]
        row = conn.execute(
            "SELECT k.create_rev, k.mod_rev, h.value FROM kv k JOIN history h ON h.rev = k.mod_rev"
            " WHERE k.key = ?",
            (key,),
        ).fetchone()
        prev = None if row is None else KV(key, row[2], row[0], row[1])
        if op == "create":
            if prev is not None:
                raise AlreadyExists(key)
            rev += 1
            conn.execute("INSERT INTO history VALUES (?, ?, 0, ?, ?, 0)", (rev, key, args[1], rev))
            conn.execute("INSERT INTO kv VALUES (?, ?, ?)", (key, rev, rev))
            kv = KV(key, args[1], rev, rev)
            return kv, Event("PUT", kv), rev
        expected: int = args[-1]
        if prev is None:
            raise NotFound(key)
        if expected and prev.mod_revision != expected:
            raise Conflict(key, expected, prev.mod_revision)
        rev += 1
        if op == "update":
            conn.execute(
                "INSERT INTO history VALUES (?, ?, 0, ?, ?, ?)",
                (rev, key, args[1], prev.create_revision, prev.mod_revision),
            )
            conn.execute("UPDATE kv SET mod_rev = ? WHERE key = ?", (rev, key))
            kv = KV(key, args[1], prev.create_revision, rev)
            return kv, Event("PUT", kv, prev), rev
        if op == "delete":
            conn.execute(
                "INSERT INTO history VALUES (?, ?, 1, NULL, ?, ?)",
                (rev, key, prev.create_revision, prev.mod_revision),
            )
            conn.execute("DELETE FROM kv WHERE key = ?", (key,))
            kv = KV(key, prev.value, prev.create_revision, rev)
            return kv, Event("DELETE", kv, prev), rev
        raise ValueError(f"unknown store operation {op!r}")


def _settle(fut: asyncio.Future[Any] | None, value: Any, exc: BaseException | None) -> None:
    if fut is None or fut.done():
        return
    if exc is not None:
        fut.set_exception(exc)
    else:
        fut.set_result(value)
