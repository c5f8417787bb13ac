"""Key-value stores behind the API server (``centaurus.stores`` entry points)."""

from centaurus.store.base import (
    KV,
    AlreadyExists,
    Compacted,
    Conflict,
    Event,
    FutureRevision,
    NotFound,
    Store,
    StoreError,
    StoreUnavailable,
)

__all__ = [
    "KV",
    "AlreadyExists",
    "Compacted",
    "Conflict",
    "Event",
    "FutureRevision",
    "NotFound",
    "Store",
    "StoreError",
    "StoreUnavailable",
]
