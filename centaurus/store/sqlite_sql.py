"""SQL of the sqlite store (schema, list/compaction queries) and its WAL checkpointer.

Kept apart from :mod:`centaurus.store.sqlite` (threads, futures, watches) so each file has one
job. All functions run on a store thread with the connection they are given.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from pathlib import Path
from typing import Any

from centaurus.store.base import KV, FutureRevision

log = logging.getLogger(__name__)

PUT, DELETE = 0, 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS history (
    rev INTEGER PRIMARY KEY,          -- store revision of this change
    key TEXT NOT NULL,
    type INTEGER NOT NULL,            -- 0 put, 1 delete (tombstone)
    value BLOB,                       -- NULL for a tombstone
    create_rev INTEGER NOT NULL,
    prev_rev INTEGER NOT NULL         -- previous change of this key, 0 if it did not exist
);
CREATE INDEX IF NOT EXISTS history_key_rev ON history (key, rev);
CREATE TABLE IF NOT EXISTS kv (
    key TEXT PRIMARY KEY, create_rev INTEGER NOT NULL, mod_rev INTEGER NOT NULL
) WITHOUT ROWID;
INSERT OR IGNORE INTO meta VALUES ('revision', 1), ('compacted', 0);
"""


def read_meta(conn: sqlite3.Connection) -> tuple[int, int]:
    rows = dict(conn.execute("SELECT name, value FROM meta").fetchall())
    return int(rows["revision"]), int(rows["compacted"])


def list_latest(conn: sqlite3.Connection, lo: str, lo_op: str, hi: str | None, limit: int
                 ) -> tuple[list[KV], bool]:
    sql = (
        "SELECT k.key, h.value, k.create_rev, k.mod_rev FROM kv k JOIN history h ON h.rev = k.mod_rev"
        f" WHERE k.key {lo_op} ?"
    )
    args: list[Any] = [lo]
    if hi is not None:
        sql += " AND k.key < ?"
        args.append(hi)
    sql += " ORDER BY k.key"
    if limit:
        sql += " LIMIT ?"
        args.append(limit + 1)
    items = [KV(*row) for row in conn.execute(sql, args)]
    more = bool(limit) and len(items) > limit
    return (items[:limit] if more else items), more


def list_at(conn: sqlite3.Connection, lo: str, lo_op: str, hi: str | None, limit: int, revision: int
             ) -> tuple[list[KV], bool]:
    """Keys as they were at ``revision``: per key, its latest change at or before it, if a PUT.
    Walks the (key, rev) index in key order in chunks so a page does not scan the whole range."""
    items: list[KV] = []
    want = limit + 1 if limit else 0
    chunk = max(256, want)
    while True:
        sql = f"SELECT key, max(rev) FROM history WHERE key {lo_op} ? AND rev <= ?"
        args: list[Any] = [lo, revision]
        if hi is not None:
            sql += " AND key < ?"
            args.append(hi)
        sql += " GROUP BY key ORDER BY key LIMIT ?"
        args.append(chunk)
        heads = conn.execute(sql, args).fetchall()
        for key, rev in heads:
            typ, value, create_rev = conn.execute(
                "SELECT type, value, create_rev FROM history WHERE rev = ?", (rev,)
            ).fetchone()
            if typ == PUT:
                items.append(KV(key, value, create_rev, rev))
                if want and len(items) >= want:
                    return items[:limit], True
        if len(heads) < chunk:
            return items, False
        lo, lo_op = heads[-1][0], ">"


def compact_history(conn: sqlite3.Connection, revision: int, current: int) -> None:
    """Drop history rows superseded at or before ``revision`` and tombstones at or before it."""
    _, compacted = read_meta(conn)
    if revision <= compacted:
        return
    if revision > current:
        raise FutureRevision(revision, current)
    conn.execute(
        "DELETE FROM history WHERE rev IN"
        " (SELECT prev_rev FROM history WHERE rev > ? AND rev <= ? AND prev_rev > 0)",
        (compacted, revision),
    )
    conn.execute("DELETE FROM history WHERE rev > ? AND rev <= ? AND type = 1", (compacted, revision))
    conn.execute("UPDATE meta SET value = ? WHERE name = 'compacted'", (revision,))


class Checkpointer:
    """Copies the WAL back into the database file on its own thread and connection.

    SQLite's automatic checkpoint runs inside the COMMIT that crosses the threshold, so one
    write in a few hundred pays for copying and fsyncing megabytes: that is the p99. Here the
    writer only appends to the WAL (its own auto-checkpoint is left as a far-off backstop) and
    this thread runs PASSIVE checkpoints, which never block the writer or readers, shortly
    after commits. ``close()`` truncates the WAL.
    """

    def __init__(self, path: Path, name: str, interval: float = 0.2) -> None:
        self.path, self.interval = path, interval
        self._dirty = threading.Event()
        self._stop = False
        self._thread = threading.Thread(target=self._main, name=f"sqlite-ckpt-{name}", daemon=True)
        self._thread.start()

    def notify(self) -> None:
        """Called by the writer after a commit."""
        self._dirty.set()

    def close(self) -> None:
        self._stop = True
        self._dirty.set()
        self._thread.join()

    def _main(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            while not self._stop:
                self._dirty.wait()
                if self._stop:
                    break
                # Let a burst of commits finish first: one checkpoint per burst, not per commit.
                threading.Event().wait(self.interval)
                self._dirty.clear()
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error as exc:  # busy/locked: the next round will catch up
                    log.debug("checkpoint of %s deferred: %s", self.path, exc)
            with contextlib.suppress(sqlite3.Error):
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        finally:
            conn.close()
