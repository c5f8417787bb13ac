"""Data partitions: several stores behind one API server, tenants mapped to them (Arktos'
``Tenant.spec.storageClusterId``; whitepaper: "data store sharded by tenant", CMP-2).

Mapping rules:

- the system tenant's data (and cluster-scoped system objects: Tenants, Nodes, ...) lives in
  partition 0;
- a tenant whose ``spec.storageClusterId`` is set lives there (``"0"`` .. ``"n-1"``);
- a tenant without one is placed by :meth:`Partitions.place` -- a stable hash of its name
  (``placement="hash"``, the default: same answer in every process, no state) or the partition
  holding the fewest bound tenants (``placement="least-loaded"``). The API server writes the
  answer into ``spec.storageClusterId`` when it creates the Tenant, so a tenant never moves even if
  the number of partitions or the rule changes later.

ResourceVersions across partitions: within a partition a resourceVersion is that store's plain
integer revision. A list or watch that spans partitions (the system tenant listing all tenants'
pods) gets a *composite* resourceVersion: the vector of per-partition revisions, encoded by
:func:`encode_rv` as ``"<r0>.<r1>...."``. Clients treat it as opaque and only echo it back
(client-go's reflector and the python client resume a watch with the resourceVersion of the last
event's object, kubectl watches from the list's), so:

- a cross-partition list returns the composite of each partition's read revision in
  ``metadata.resourceVersion``; its items keep their own plain revisions (for updates);
- a cross-partition watch yields the composite *after* each event (:meth:`Partitions.watch_all`),
  whose component of the event's partition is the event's revision, i.e. the object's own: the
  API server stamps it on the event's object, so resuming from any object's resourceVersion
  resumes every partition exactly where that client stopped (no gap, no duplicate) and the
  same string is a valid update precondition for that object;
- a composite sent back for an update precondition is resolved with :func:`revision_for` (the
  component of the object's partition equals the object's own revision);
- a plain non-zero integer on a cross-partition watch cannot be placed and is answered
  410 Gone (the client relists); ``""``/``"0"`` mean "from now" as in Kubernetes;
- with one partition the composite *is* the plain integer, so nothing changes.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
from collections.abc import AsyncGenerator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from centaurus import plugins
from centaurus.store.base import KV, Event, Store

SYSTEM_TENANT = "system"
Placement = Literal["hash", "least-loaded"]


def encode_rv(revisions: Sequence[int]) -> str:
    """The resourceVersion string of a position in every partition (plain integer if one)."""
    return ".".join(str(int(r)) for r in revisions)


def decode_rv(rv: str, n: int) -> list[int] | None:
    """Per-partition revisions of a resourceVersion a client sent back.

    ``None`` for ``""``/``"0"`` ("from now / any"). Raises ValueError for malformed input or a
    vector of the wrong length (the API server answers 400, or 410 for a stale plain integer
    on a multi-partition request: see :func:`is_plain`).
    """
    rv = (rv or "").strip()
    if rv in ("", "0"):
        return None
    parts = rv.split(".")
    try:
        revs = [int(p) for p in parts]
    except ValueError:
        raise ValueError(f"malformed resourceVersion {rv!r}") from None
    if any(r < 0 for r in revs):
        raise ValueError(f"malformed resourceVersion {rv!r}")
    if len(revs) != n:
        raise ValueError(f"resourceVersion {rv!r} has {len(revs)} component(s), expected {n}")
    return revs


def is_plain(rv: str) -> bool:
    """A single-partition resourceVersion (a plain integer)."""
    return rv.strip().isdigit()


def revision_for(rv: str, index: int, n: int) -> int:
    """The revision of partition ``index`` in ``rv`` (a plain integer is taken as is): what an
    update precondition compares with the object's mod_revision."""
    if is_plain(rv):
        return int(rv)
    revs = decode_rv(rv, n)
    return 0 if revs is None else revs[index]


def stable_hash(tenant: str, n: int) -> int:
    """Same answer in every process and Python version (unlike ``hash()``)."""
    return int.from_bytes(hashlib.sha256(tenant.encode()).digest()[:8], "big") % n


class Partitions:
    """The data partitions of one control plane."""

    def __init__(
        self, stores: Sequence[Store], *, placement: Placement = "hash", count_system: bool = False
    ) -> None:
        """``count_system``: least-loaded placement counts the system tenant as one tenant of
        partition 0 (the API server: the system tenant's objects are real load there)."""
        if not stores:
            raise ValueError("at least one partition is needed")
        if placement not in ("hash", "least-loaded"):
            raise ValueError(f"placement must be 'hash' or 'least-loaded', not {placement!r}")
        self._stores = list(stores)
        self.placement = placement
        self.count_system = count_system
        self._bound: dict[str, int] = {}
        self._compactors: list[asyncio.Task[None]] = []

    @classmethod
    async def open(
        cls,
        kind: str,
        n: int,
        state_dir: Path | str,
        options: Mapping[str, Any] | None = None,
        *,
        placement: Placement = "hash",
        count_system: bool = False,
    ) -> Partitions:
        """Open ``n`` partitions of store ``kind`` (a ``centaurus.stores`` entry point) under
        ``state_dir``: sqlite files ``partition-<i>.db``; etcd clusters started under
        ``etcd-p<i>/`` (``options["members"]``: 1 or 3) unless ``options["endpoints"]`` lists
        an existing cluster's endpoints per partition."""
        if n < 1:
            raise ValueError("the number of partitions must be >= 1")
        factory = plugins.load("store", kind)
        state = Path(state_dir)
        state.mkdir(parents=True, exist_ok=True)
        opts = dict(options or {})
        results = await asyncio.gather(
            *(factory.open_partition(i, state, opts) for i in range(n)), return_exceptions=True
        )
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            for r in results:
                if not isinstance(r, BaseException):
                    await r.close()
            raise errors[0]
        return cls(results, placement=placement, count_system=count_system)  # type: ignore[arg-type]

    async def close(self) -> None:
        for t in self._compactors:
            t.cancel()
        self._compactors.clear()
        await asyncio.gather(*(s.close() for s in self._stores), return_exceptions=True)

    def start_compactors(self, interval: float = 300.0) -> None:
        """Compact every partition periodically (see :mod:`centaurus.store.compactor`);
        stopped by :meth:`close`."""
        from centaurus.store.compactor import compact_periodically

        if not self._compactors:
            self._compactors = [asyncio.create_task(compact_periodically(s, interval)) for s in self._stores]

    # ---- mapping -------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._stores)

    def all(self) -> list[Store]:
        return list(self._stores)

    def store(self, index: int) -> Store:
        return self._stores[index]

    def parse_cluster_id(self, storage_cluster_id: str | int | None) -> int | None:
        """``spec.storageClusterId`` -> partition index (None if unset). ValueError if invalid."""
        if storage_cluster_id is None or storage_cluster_id == "":
            return None
        try:
            idx = int(storage_cluster_id)
        except (TypeError, ValueError):
            raise ValueError(f"storageClusterId {storage_cluster_id!r} is not a partition number") from None
        if not 0 <= idx < len(self._stores):
            last = len(self._stores) - 1
            raise ValueError(f"storageClusterId {idx} out of range: partitions are 0..{last}")
        return idx

    def place(self, tenant: str) -> int:
        """Where a new tenant without a storageClusterId goes (write it into its spec)."""
        if tenant == SYSTEM_TENANT:
            return 0
        n = len(self._stores)
        if self.placement == "hash":
            return stable_hash(tenant, n)
        load = [0] * n
        load[0] += int(self.count_system)
        for t, i in self._bound.items():
            if t != SYSTEM_TENANT:
                load[i] += 1
        return min(range(n), key=lambda i: (load[i], i))

    def bind(self, tenant: str, storage_cluster_id: str | int | None = None) -> int:
        """Record where ``tenant`` lives (call for every Tenant object the API server sees)."""
        idx = 0 if tenant == SYSTEM_TENANT else self.parse_cluster_id(storage_cluster_id)
        if idx is None:
            idx = self._bound.get(tenant, self.place(tenant))
        self._bound[tenant] = idx
        return idx

    def unbind(self, tenant: str) -> None:
        self._bound.pop(tenant, None)

    def follow(self, tenant: str, storage_cluster_id: str | int | None) -> int:
        """Bind ``tenant`` as its Tenant object says now: a valid ``storageClusterId`` is
        taken; none or an invalid one binds the tenant at its stable hash (never a placement that
        could differ between processes)."""
        try:
            idx = self.parse_cluster_id(storage_cluster_id)
        except ValueError:
            idx = None
        if tenant == SYSTEM_TENANT:
            idx = 0
        self._bound[tenant] = stable_hash(tenant, len(self._stores)) if idx is None else idx
        return self._bound[tenant]

    def follow_all(self, tenants: Mapping[str, str | int | None]) -> None:
        """Replace every binding with ``{tenant: storageClusterId}`` of the Tenant objects as
        they are now (see :meth:`follow`)."""
        self._bound = {}
        for t, sid in tenants.items():
            self.follow(t, sid)

    def index_for(self, tenant: str) -> int:
        """Where ``tenant`` lives; an unbound tenant is looked up at its stable hash (with
        ``hash`` placement also where :meth:`place` would put it) so the answer never varies."""
        if tenant == SYSTEM_TENANT or len(self._stores) == 1:
            return 0
        idx = self._bound.get(tenant)
        return idx if idx is not None else stable_hash(tenant, len(self._stores))

    def for_tenant(self, tenant: str) -> Store:
        return self._stores[self.index_for(tenant)]

    # ---- cross-partition reads -----------------------------------------------------------------

    async def current_rv(self) -> str:
        revs = await asyncio.gather(*(s.revision() for s in self._stores))
        return encode_rv(revs)

    async def list_all(
        self, prefix: str, *, limit: int = 0, cont: str | None = None
    ) -> tuple[list[tuple[int, KV]], str, str | None]:
        """List ``prefix`` in every partition (partition 0's keys first, then 1's, ...), as one
        consistent snapshot per partition. Returns ``(items with their partition index,
        composite resourceVersion, continue token or None)``; pass the token back to go on."""
        n = len(self._stores)
        if cont:
            try:
                state = json.loads(base64.urlsafe_b64decode(cont.encode()))
                revs, part, after = [int(r) for r in state["rv"]], int(state["p"]), state["k"]
            except (ValueError, KeyError, TypeError):
                raise ValueError("malformed continue token") from None
            if len(revs) != n or not 0 <= part < n:
                raise ValueError("continue token does not match the partitions")
        else:
            revs = list(await asyncio.gather(*(s.revision() for s in self._stores)))
            part, after = 0, None
        out: list[tuple[int, KV]] = []
        while part < n:
            want = limit - len(out) if limit else 0
            items, _, more = await self._stores[part].list(
                prefix, limit=want, start_after=after, revision=revs[part]
            )
            out.extend((part, kv) for kv in items)
            if more:
                after = items[-1].key
            else:
                part, after = part + 1, None
            if limit and len(out) >= limit:
                break
        nxt = None
        if part < n and limit:
            nxt = base64.urlsafe_b64encode(json.dumps({"rv": revs, "p": part, "k": after}).encode()).decode()
        return out, encode_rv(revs), nxt

    async def watch_all(self, prefix: str, from_rv: str) -> AsyncGenerator[tuple[int, Event, str], None]:
        """Merge the watches of every partition. Yields ``(partition index, event, composite
        resourceVersion after this event)``; resuming from that string continues every
        partition exactly there. Errors of any partition's watch (e.g. Compacted) end it."""
        n = len(self._stores)
        revs = decode_rv(from_rv, n)
        if revs is None:
            revs = list(await asyncio.gather(*(s.revision() for s in self._stores)))
        queue: asyncio.Queue[tuple[int, Event | Exception]] = asyncio.Queue(maxsize=1024)

        async def pump(i: int) -> None:
            it = self._stores[i].watch(prefix, revs[i])
            try:
                async for ev in it:
                    await queue.put((i, ev))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # handed to the consumer, which re-raises it
                await queue.put((i, exc))
            finally:
                await it.aclose()

        tasks = [asyncio.create_task(pump(i)) for i in range(n)]
        try:
            while True:
                i, item = await queue.get()
                if isinstance(item, Exception):
                    raise item
                revs[i] = item.kv.mod_revision
                yield i, item, encode_rv(revs)
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
