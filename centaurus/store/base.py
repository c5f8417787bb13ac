"""The one storage interface the API server uses.

Semantics follow etcd v3 because that is what Kubernetes resourceVersions are built on: every
write bumps a store-wide monotonic *revision*; each key remembers the revision that created it and
the one that last modified it; updates are compare-and-swap on ``mod_revision``; a watch replays
every change after a revision in commit order, or raises :class:`Compacted` when that history is
gone (the API server turns this into ``410 Gone``).

One ``Store`` instance is one *data partition* (one sqlite file, or one etcd cluster). Tenants are
mapped to partitions above this interface.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable


class StoreError(Exception):
    """Base class of store failures the API server maps to Status objects."""


class NotFound(StoreError):
    """The key does not exist (or no longer exists)."""


class AlreadyExists(StoreError):
    """``create`` of a key that exists."""


class Conflict(StoreError):
    """Compare-and-swap failed: the key's mod_revision is not the expected one."""

    def __init__(self, key: str, expected: int, actual: int | None) -> None:
        super().__init__(f"{key}: expected revision {expected}, found {actual}")
        self.key, self.expected, self.actual = key, expected, actual


class Compacted(StoreError):
    """History before ``compact_revision`` is gone: a watch or read at an older revision fails."""

    def __init__(self, requested: int, compact_revision: int) -> None:
        super().__init__(f"revision {requested} is compacted (oldest kept: {compact_revision})")
        self.requested, self.compact_revision = requested, compact_revision


class FutureRevision(StoreError):
    """A read or compaction asked for a revision newer than the store's current one (the API
    server maps this to Kubernetes' "Too large resource version" 504)."""

    def __init__(self, requested: int, current: int) -> None:
        super().__init__(f"revision {requested} is newer than the current revision {current}")
        self.requested, self.current = requested, current


class StoreUnavailable(StoreError):
    """The backend cannot serve (no quorum, file locked, process gone). For a write the outcome
    is unknown: it may or may not have been applied (the client has to re-read)."""


@dataclass(frozen=True, slots=True)
class KV:
    key: str
    value: bytes
    create_revision: int
    mod_revision: int


@dataclass(frozen=True, slots=True)
class Event:
    """One committed change. ``kv.mod_revision`` is the revision of the change itself; for a
    DELETE, ``kv.value`` is the last value and ``kv.mod_revision`` the deleting revision."""

    type: Literal["PUT", "DELETE"]
    kv: KV
    prev: KV | None = None


@runtime_checkable
class Store(Protocol):
    """One data partition. All methods are coroutines: implementations must not block the loop."""

    name: str

    async def start(self) -> None:
        """Open files / connect. Idempotent."""

    async def close(self) -> None:
        """Release everything; pending watches end."""

    async def revision(self) -> int:
        """Current (latest committed) revision."""

    async def get(self, key: str) -> KV | None: ...

    async def list(
        self, prefix: str, *, limit: int = 0, start_after: str | None = None, revision: int = 0
    ) -> tuple[list[KV], int, bool]:
        """Keys under ``prefix`` in key order, at ``revision`` (0 = latest).

        Returns ``(items, revision_read_at, more)``; ``more`` is true when ``limit`` cut the list.
        ``start_after`` resumes after that key (pass the last key of the previous page and the
        ``revision_read_at`` of the first page for a consistent paginated snapshot).
        Raises :class:`Compacted` when ``revision`` is older than the compaction point and
        :class:`FutureRevision` when it is newer than the current revision.
        """

    async def create(self, key: str, value: bytes) -> KV:
        """Insert; raises :class:`AlreadyExists`. Returns the stored KV with its revisions."""

    async def update(self, key: str, value: bytes, expected_revision: int) -> KV:
        """Replace iff ``mod_revision == expected_revision`` (0 = unconditional).

        Raises :class:`NotFound` or :class:`Conflict`.
        """

    async def delete(self, key: str, expected_revision: int = 0) -> KV:
        """Remove; returns the deleted KV with ``mod_revision`` = the deleting revision."""

    def watch(self, prefix: str, from_revision: int) -> AsyncGenerator[Event, None]:
        """Every change under ``prefix`` with revision > ``from_revision``, in commit order,
        then live changes until the iterator is closed (``aclose()``) or the store closes.

        An async generator: errors surface on iteration, not at call time. Raises
        :class:`Compacted` when ``from_revision`` is older than the compaction point (also
        mid-stream, if a watcher fell so far behind that its history was compacted away), and
        :class:`StoreUnavailable` when the backend is gone for good."""

    async def compact(self, revision: int) -> None:
        """Forget history before ``revision``: afterwards reads at ``revision`` or later and
        watches from ``revision`` or later still work, older ones raise :class:`Compacted`.
        Current values are kept. Compacting to an already compacted revision is a no-op."""


class StoreFactory(Protocol):
    """How :mod:`centaurus.store.partitions` opens one data partition of a store kind without
    knowing the kind (the ``centaurus.stores`` entry point is the class; this is its classmethod).
    ``options`` are the kind's own settings (e.g. ``synchronous`` for sqlite, ``endpoints`` or
    ``members`` for etcd); a kind that needs processes (etcd) starts them here and stops them in
    ``close()``."""

    async def open_partition(self, index: int, state_dir: Path, options: Mapping[str, Any]) -> Store: ...
