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

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable


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


class StoreUnavailable(StoreError):
    """The backend cannot serve (no quorum, file locked, process gone)."""


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
        Raises :class:`Compacted` when ``revision`` is older than the compaction point.
        """

    async def create(self, key: str, value: bytes) -> KV:
        """Insert; raises :class:`AlreadyExists`. Returns the stored KV with its revisions."""

    async def update(self, key: str, value: bytes, expected_revision: int) -> KV:
        """Replace iff ``mod_revision == expected_revision`` (0 = unconditional).

        Raises :class:`NotFound` or :class:`Conflict`.
        """

    async def delete(self, key: str, expected_revision: int = 0) -> KV:
        """Remove; returns the deleted KV with ``mod_revision`` = the deleting revision."""

    def watch(self, prefix: str, from_revision: int) -> AsyncIterator[Event]:
        """Every change under ``prefix`` with revision > ``from_revision``, in commit order,
        then live changes until the iterator is closed. Raises :class:`Compacted`."""

    async def compact(self, revision: int) -> None:
        """Forget history at or before ``revision`` (current values are kept)."""
