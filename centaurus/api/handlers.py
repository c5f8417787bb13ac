"""The verbs on one resource: get, list, create, update, patch, delete, deletecollection.

Each handler receives a :class:`Call` (already authenticated, tenant-scoped and authorized) and
returns a response. Reads of collections come from the watch cache after it has caught up with
the store (consistent lists); single-object reads and read-modify-write go to the store.
"""

from __future__ import annotations

import asyncio
import base64
import copy
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from centaurus.api import encoding
from centaurus.api.admission import Admission
from centaurus.api.routing import ALL_TENANTS, RequestInfo
from centaurus.api.storage import Storage
from centaurus.auth.tokens import Identity
from centaurus.objects import kinds as K
from centaurus.objects import lifecycle, patch, table, validation
from centaurus.objects.selectors import both, field_selector, label_selector
from centaurus.objects.status import ApiStatusError, conflict, invalid, status_success
from centaurus.store.base import StoreError
from centaurus.store.partitions import revision_for

PATCH_RETRIES = 5
NODES = K.must("", "v1", "nodes")


@dataclass
class Call:
    request: web.Request
    info: RequestInfo
    kind: K.Kind
    tenant: str
    ident: Identity
    verb: str
    storage: Storage
    admission: Admission

    @property
    def ns(self) -> str | None:
        return self.info.namespace if self.kind.namespaced else None

    @property
    def name(self) -> str:
        assert self.info.name is not None
        return self.info.name

    @property
    def query(self) -> Any:
        return self.request.rel_url.query

    @property
    def dry_run(self) -> bool:
        return "All" in self.query.getall("dryRun", [])


def respond(call: Call, obj: dict[str, Any], status: int = 200) -> web.Response:
    if encoding.wants_table(call.request):
        return encoding.json_response(
            table.to_table(
                call.kind,
                [obj],
                {"resourceVersion": (obj.get("metadata") or {}).get("resourceVersion", "")},
                call.query.get("includeObject", "Metadata"),
            ),
            status,
        )
    return encoding.json_response(obj, status)


# ---- reads --------------------------------------------------------------------------------------
async def get(call: Call) -> web.Response:
    if not call.info.subresource and not encoding.wants_table(call.request):
        e = await call.storage.get_entry(call.kind, call.tenant, call.ns, call.name)
        if e is not None:
            return encoding.raw_response(e.raw)  # cached JSON, no re-encoding
    obj, _ = await call.storage.get(call.kind, call.tenant, call.ns, call.name)
    if call.info.subresource == "scale":
        return encoding.json_response(_scale_of(obj))
    return respond(call, obj)


def _scale_of(obj: dict[str, Any]) -> dict[str, Any]:
    md = obj["metadata"]
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: md[k]
            for k in ("name", "namespace", "tenant", "uid", "resourceVersion", "creationTimestamp")
            if k in md
        },
        "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 0)},
        "status": {"replicas": (obj.get("status") or {}).get("replicas", 0)},
    }


def selector_of(call: Call) -> Any:
    return both(
        label_selector(call.query.get("labelSelector")), field_selector(call.query.get("fieldSelector"))
    )


async def list_(call: Call) -> web.Response:
    q = call.query
    pred = selector_of(call)
    limit = int(q.get("limit") or 0) if (q.get("limit") or "0").isdigit() else 0
    cont = q.get("continue") or ""
    rv = q.get("resourceVersion", "")
    scopes = scopes_of(call)
    pred = both(pred, all_tenant_ns_pred(call))
    parts = sorted({i for i, _ in scopes})
    if (limit or cont) and len(scopes) == 1:
        return await _list_paged(call, scopes[0][0], scopes[0][1], limit, cont, rv, pred)
    revs = []
    for i in parts:
        p = call.storage.parts[i]
        if rv in ("", None):
            await p.sync()
        elif rv != "0" and rv.isdigit() and not await p.wait_for(int(rv), 3.0):
            raise ApiStatusError(
                504,
                f"Too large resource version: {rv}, current: {p.revision}",
                "Timeout",
                {"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}]},
            )
        revs.append(p.revision)
    # across partitions: the composite "<r0>.<r1>..." of every partition's read revision
    list_rv = str(revs[0]) if len(revs) == 1 else ".".join(str(r) for r in revs)
    entries = []
    for i, prefix in scopes:
        for e in call.storage.parts[i].kind(call.kind.storage_prefix).entries(prefix):
            if pred is None or pred(e.obj):
                entries.append(e)
    # a cross-partition list is answered whole: truncating without a continue token would lose
    # items (upstream likewise ignores limit for lists served from the watch cache)
    meta = {"resourceVersion": list_rv}
    if encoding.wants_table(call.request):
        return encoding.json_response(
            table.to_table(call.kind, [e.obj for e in entries], meta, q.get("includeObject", "Metadata"))
        )
    head = orjson.dumps({"kind": call.kind.list_kind, "apiVersion": call.kind.api_version, "metadata": meta})
    body = head[:-1] + b',"items":[' + b",".join(e.raw for e in entries) + b"]}"
    return encoding.raw_response(body)


def scopes_of(call: Call) -> list[tuple[int, str]]:
    """(partition index, key prefix) pairs a list or watch reads. ``tenants/all`` reads every
    partition whole (so tenants created later are included); otherwise one tenant's prefix."""
    if call.info.path_tenant == ALL_TENANTS and call.kind.scope != "Cluster":
        return [(i, call.kind.storage_prefix) for i in range(len(call.storage.parts))]
    part = call.storage.part_for(call.kind, call.tenant).index
    return [(part, call.kind.scope_prefix(call.tenant, call.ns))]


def all_tenant_ns_pred(call: Call) -> Any:
    if call.info.path_tenant != ALL_TENANTS or not call.ns:
        return None
    ns = call.ns
    return lambda o: (o.get("metadata") or {}).get("namespace") == ns


async def _list_paged(
    call: Call, part: int, prefix: str, limit: int, cont: str, rv: str, pred: Any
) -> web.Response:
    """limit/continue pages read the store at one revision, as upstream (consistent pagination).
    A first page that holds the whole result (no continue token needed) is the plain list: it is
    served from the watch cache like one (kubectl and informers send limit=500 on every list;
    reading, parsing and re-encoding each object from the store cost 8 % of the API server's CPU
    in the api-latency campaign)."""
    if limit and not cont and rv in ("", "0"):
        whole = await _whole_page_from_cache(call, part, prefix, limit, rv, pred)
        if whole is not None:
            return whole
    store = call.storage.parts[part].store
    start_after, revision = None, 0
    if cont:
        try:
            tok = orjson.loads(base64.urlsafe_b64decode(cont.encode()))
            start_after, revision = str(tok["start"]), int(tok["rv"])
        except (ValueError, KeyError, TypeError):
            raise ApiStatusError(400, "invalid continue token", "BadRequest") from None
    elif rv.isdigit() and rv != "0" and q_match(call) == "Exact":
        revision = int(rv)
    items: list[bytes] = []
    objs: list[dict[str, Any]] = []
    more = False
    last = start_after
    try:
        while len(items) < (limit or 1 << 30):
            page, read_at, more = await store.list(
                prefix, limit=limit or 0, start_after=last, revision=revision
            )
            revision = revision or read_at
            for kv in page:
                last = kv.key
                obj = orjson.loads(kv.value)
                obj.setdefault("metadata", {})["resourceVersion"] = str(kv.mod_revision)
                if pred is None or pred(obj):
                    objs.append(obj)
                    items.append(orjson.dumps(obj))
                    if limit and len(items) >= limit:
                        break
            if not more or not limit or len(items) >= limit:
                break
    except StoreError as exc:
        from centaurus.store.base import Compacted

        if isinstance(exc, Compacted):
            raise ApiStatusError(
                410,
                "The provided continue parameter is too old to display a consistent list "
                "result. You can start a new list without the continue parameter.",
                "Expired",
            ) from None
        raise ApiStatusError(500, f"storage error: {exc}") from None
    meta: dict[str, Any] = {"resourceVersion": str(revision)}
    if more and last:
        meta["continue"] = base64.urlsafe_b64encode(orjson.dumps({"rv": revision, "start": last})).decode()
    if encoding.wants_table(call.request):
        return encoding.json_response(
            table.to_table(call.kind, objs, meta, call.query.get("includeObject", "Metadata"))
        )
    head = orjson.dumps({"kind": call.kind.list_kind, "apiVersion": call.kind.api_version, "metadata": meta})
    return encoding.raw_response(head[:-1] + b',"items":[' + b",".join(items) + b"]}")


async def _whole_page_from_cache(
    call: Call, part: int, prefix: str, limit: int, rv: str, pred: Any
) -> web.Response | None:
    p = call.storage.parts[part]
    kc = p.kind(call.kind.storage_prefix)
    if kc.count(prefix) > limit or (rv == "" and not await p.sync()):
        return None
    entries = []
    for e in kc.entries(prefix):
        if pred is None or pred(e.obj):
            entries.append(e)
            if len(entries) > limit:
                return None  # grew meanwhile: a real page with a continue token
    meta = {"resourceVersion": str(p.revision)}
    if encoding.wants_table(call.request):
        return encoding.json_response(
            table.to_table(
                call.kind, [e.obj for e in entries], meta, call.query.get("includeObject", "Metadata")
            )
        )
    head = orjson.dumps({"kind": call.kind.list_kind, "apiVersion": call.kind.api_version, "metadata": meta})
    return encoding.raw_response(head[:-1] + b',"items":[' + b",".join(e.raw for e in entries) + b"]}")


def q_match(call: Call) -> str:
    return str(call.query.get("resourceVersionMatch", ""))


# ---- writes -------------------------------------------------------------------------------------
async def create(call: Call) -> web.Response:
    body = await encoding.read_object(call.request)
    if call.info.subresource:
        return await _create_subresource(call, body)
    kind = call.kind
    obj = validation.check_type(kind, body)
    validation.check_strict(kind, obj, call.query.get("fieldValidation", ""))
    if kind.namespaced and not call.info.namespace:
        raise ApiStatusError(
            404, "the server could not find the requested resource: a namespace is required", "NotFound"
        )
    lifecycle.prepare_create(kind, obj, call.tenant, call.ns)
    if kind.kind == "Tenant":
        obj["metadata"].pop("tenant", None)
        sid = str((obj.get("spec") or {}).get("storageClusterId") or "")
        try:
            call.storage.partitions.parse_cluster_id(sid)
        except ValueError:
            raise invalid(
                "Tenant",
                obj["metadata"].get("name", ""),
                [
                    (
                        "spec.storageClusterId",
                        f"unknown storage cluster {sid!r} (have 0..{len(call.storage.parts) - 1})",
                    )
                ],
            ) from None
        if not sid:
            chosen = call.storage.choose_partition(obj["metadata"].get("name", ""))
            obj["spec"]["storageClusterId"] = str(chosen)
    validation.validate(kind, obj)
    name = obj["metadata"]["name"]
    call.admission.check_tenant_active(call.tenant)
    if kind.namespaced:
        ns = obj["metadata"]["namespace"]
        call.admission.check_namespace(call.tenant, ns)
        if not call.admission.has_quota(call.tenant, ns):
            # no ResourceQuota here: nothing to serialize (the common, fast path)
            if call.dry_run:
                return respond(call, obj, 201)
            out = await _store_create(call, obj, name)
            return respond(call, out, 201)
        async with call.admission.lock(call.tenant, ns):
            await call.storage.part_for(kind, call.tenant).sync()
            call.admission.check_quota(kind, call.tenant, ns, obj)
            if call.dry_run:
                return respond(call, obj, 201)
            out = await _store_create(call, obj, name)
            # the next admission of this namespace must see this object
            await call.storage.part_for(kind, call.tenant).wait_for(
                int(out["metadata"]["resourceVersion"]), 2.0
            )
    else:
        if call.dry_run:
            return respond(call, obj, 201)
        out = await _store_create(call, obj, name)
    return respond(call, out, 201)


async def _store_create(call: Call, obj: dict[str, Any], name: str) -> dict[str, Any]:
    gen = obj["metadata"].get("generateName")
    for _ in range(5):
        try:
            return await call.storage.create(call.kind, call.tenant, call.ns, name, obj)
        except ApiStatusError as exc:
            if exc.reason != "AlreadyExists" or not gen or obj["metadata"].get("name") != name:
                raise
            if not gen:
                raise
            name = obj["metadata"]["name"] = lifecycle.generated_name(gen)
    raise ApiStatusError(500, "could not generate a unique name", "InternalError")


async def _create_subresource(call: Call, body: Any) -> web.Response:
    sub = call.info.subresource
    if call.kind.kind == "Pod" and sub == "binding":
        target = (body or {}).get("target") or {}
        node = target.get("name")
        if not node:
            raise ApiStatusError(400, "binding target name is required", "BadRequest")

        def bind(cur: dict[str, Any]) -> dict[str, Any]:
            spec = cur.setdefault("spec", {})
            if spec.get("nodeName"):
                raise ApiStatusError(
                    409, f'pod {call.name} is already assigned to node "{spec["nodeName"]}"', "Conflict"
                )
            spec["nodeName"] = node
            conds = [
                c
                for c in (cur.setdefault("status", {}).get("conditions") or [])
                if c.get("type") != "PodScheduled"
            ]
            conds.append(
                {
                    "type": "PodScheduled",
                    "status": "True",
                    "lastTransitionTime": lifecycle.now_rfc3339(micro=True),
                }
            )
            cur["status"]["conditions"] = conds
            return cur

        await _mutate(call, bind)
        return encoding.json_response(status_success(), 201)
    if call.kind.kind == "Pod" and sub == "eviction":
        await call.storage.delete(call.kind, call.tenant, call.ns, call.name)
        return encoding.json_response(status_success(), 201)
    raise ApiStatusError(
        405, f"POST on {call.kind.plural}/{sub} is not implemented by this server yet", "MethodNotAllowed"
    )


def _own_revision(call: Call, rv: str) -> int | None:
    """The revision a precondition names for this object: a plain integer as is; a composite
    (object seen in a cross-partition list/watch) by its component of the object's partition,
    which the watch stamps with the object's own revision. None if it cannot be one."""
    try:
        return revision_for(rv, call.storage.part_for(call.kind, call.tenant).index, len(call.storage.parts))
    except ValueError:
        return None


async def _mutate(call: Call, fn: Any, expected_rv: str | None = None) -> dict[str, Any]:
    """Read, transform, compare-and-swap; retried on conflict unless the client pinned a version."""
    for _ in range(PATCH_RETRIES):
        cur, rev, raw = await call.storage.get_raw(call.kind, call.tenant, call.ns, call.name)
        if expected_rv and _own_revision(call, expected_rv) != rev:
            raise conflict(call.kind.plural, call.name, call.kind.group)
        # the copy fn may change: decoding the cached JSON again (or a JSON round trip) is the
        # cheap deep copy (copy.deepcopy was ~5 % of the API server's CPU in the perf-api profile)
        new = fn(orjson.loads(raw if raw is not None else orjson.dumps(cur)))
        try:
            return await _finish_update(call, new, cur, rev)
        except ApiStatusError as exc:
            if exc.reason != "Conflict" or expected_rv:
                raise
    raise conflict(call.kind.plural, call.name, call.kind.group)


async def _finish_update(call: Call, new: dict[str, Any], cur: dict[str, Any], rev: int) -> dict[str, Any]:
    """Store an update; an update that removes the LAST finalizer of an object being deleted
    deletes it (upstream ``shouldDeleteDuringUpdate``). Other updates of terminating objects
    (e.g. a pod's status during its grace period) are ordinary updates."""
    md = new.get("metadata") or {}
    if (
        md.get("deletionTimestamp")
        and not md.get("finalizers")
        and (cur.get("metadata") or {}).get("finalizers")
        and call.kind.kind not in ("Namespace", "Tenant")
    ):
        if not call.dry_run:
            await call.storage.delete(call.kind, call.tenant, call.ns, call.name, rev)
        return new
    if call.dry_run:
        return new
    return await call.storage.update(call.kind, call.tenant, call.ns, call.name, new, rev)


async def update(call: Call) -> web.Response:
    body = await encoding.read_object(call.request)
    sub = call.info.subresource
    if sub == "scale":
        replicas = ((body or {}).get("spec") or {}).get("replicas")

        def scale(cur: dict[str, Any]) -> dict[str, Any]:
            cur.setdefault("spec", {})["replicas"] = replicas
            cur["metadata"]["generation"] = int(cur["metadata"].get("generation") or 1) + 1
            return cur

        return encoding.json_response(_scale_of(await _mutate(call, scale)))
    if sub == "finalize":
        return respond(call, await _finalize(call, body))
    obj = validation.check_type(call.kind, body)
    validation.check_strict(call.kind, obj, call.query.get("fieldValidation", ""))
    md = obj["metadata"]
    if md.get("name") and md["name"] != call.name:
        raise ApiStatusError(
            400,
            f"the name of the object ({md['name']}) does not match the name on the URL ({call.name})",
            "BadRequest",
        )
    md["name"] = call.name
    want = md.get("resourceVersion") or None

    def apply(cur: dict[str, Any]) -> dict[str, Any]:
        new = lifecycle.prepare_update(call.kind, copy.deepcopy(obj), cur, sub)
        validation.validate(call.kind, new)
        return new

    out = await _mutate(call, apply, want)
    return respond(call, out)


async def _finalize(call: Call, body: Any) -> dict[str, Any]:
    """Namespaces and tenants: drop spec.finalizers; when none are left on an object being
    deleted, it is gone (the lifecycle controller calls this after emptying it)."""
    fins = ((body or {}).get("spec") or {}).get("finalizers") or []
    for _ in range(PATCH_RETRIES):
        cur, rev = await call.storage.get(call.kind, call.tenant, call.ns, call.name)
        cur.setdefault("spec", {})["finalizers"] = list(fins)
        if cur["metadata"].get("deletionTimestamp") and not fins and not cur["metadata"].get("finalizers"):
            await call.storage.delete(call.kind, call.tenant, call.ns, call.name, rev)
            return cur
        try:
            return await call.storage.update(call.kind, call.tenant, call.ns, call.name, cur, rev)
        except ApiStatusError as exc:
            if exc.reason != "Conflict":
                raise
    raise conflict(call.kind.plural, call.name, call.kind.group)


async def patch_(call: Call) -> web.Response:
    ctype = encoding.media_type(call.request)
    flavour = patch.PATCH_TYPES.get(ctype)
    if flavour is None:
        raise ApiStatusError(
            415,
            f"the body of the request was in an unknown format - accepted media types "
            f"include: {', '.join(patch.PATCH_TYPES)}",
            "UnsupportedMediaType",
        )
    raw = await encoding.read_raw(call.request)
    body = encoding.parse_body(raw, ctype, allow_patch=True)
    sub = call.info.subresource
    pinned = ((body.get("metadata") or {}).get("resourceVersion") if isinstance(body, dict) else None) or None

    def apply(cur: dict[str, Any]) -> dict[str, Any]:
        if sub == "scale":
            scaled = patch.apply_patch(flavour, _scale_of(cur), body, False)
            cur.setdefault("spec", {})["replicas"] = (scaled.get("spec") or {}).get("replicas")
            return cur
        new = patch.apply_patch(flavour, cur, body, call.kind.crd is not None)
        new = validation.check_type(call.kind, new)
        if (new.get("metadata") or {}).get("name") != call.name:
            raise ApiStatusError(
                400, f"the name of the object does not match the name on the URL ({call.name})", "BadRequest"
            )
        new = lifecycle.prepare_update(call.kind, new, cur, sub)
        validation.validate(call.kind, new)
        return new

    out = await _mutate(call, apply, pinned)
    if sub == "scale":
        return encoding.json_response(_scale_of(out))
    return respond(call, out)


# ---- deletes ------------------------------------------------------------------------------------
async def _delete_options(call: Call) -> dict[str, Any]:
    opts: dict[str, Any] = {}
    raw = await encoding.read_raw(call.request)
    if raw.strip():
        parsed = encoding.parse_body(raw, encoding.media_type(call.request))
        if not isinstance(parsed, dict):
            raise ApiStatusError(400, "DeleteOptions must be an object", "BadRequest")
        opts.update(parsed)
    q = call.query
    if "gracePeriodSeconds" in q:
        try:
            opts["gracePeriodSeconds"] = int(q["gracePeriodSeconds"])
        except ValueError:
            raise ApiStatusError(400, "gracePeriodSeconds must be an integer", "BadRequest") from None
    if "propagationPolicy" in q:
        opts["propagationPolicy"] = q["propagationPolicy"]
    pp = opts.get("propagationPolicy")
    if pp not in (None, "Orphan", "Background", "Foreground"):
        raise ApiStatusError(400, f"unsupported propagationPolicy {pp!r}", "BadRequest")
    return opts


async def delete_one(call: Call, name: str, opts: dict[str, Any]) -> dict[str, Any]:
    kind, storage = call.kind, call.storage
    for _ in range(PATCH_RETRIES):
        cur, rev = await storage.get(kind, call.tenant, call.ns, name)
        pre = opts.get("preconditions") or {}
        if pre.get("uid") and pre["uid"] != cur["metadata"].get("uid"):
            raise ApiStatusError(
                409,
                f"Precondition failed: UID in precondition: {pre['uid']}, UID in object "
                f"meta: {cur['metadata'].get('uid')}",
                "Conflict",
            )
        if pre.get("resourceVersion") and _own_revision(call, str(pre["resourceVersion"])) != rev:
            raise conflict(kind.plural, name, kind.group)
        md = cur["metadata"]
        graceful = _graceful(call, cur, opts)
        # Foreground / Orphan: the garbage collector finishes the job (dependents first, or
        # their ownerReferences stripped) and then removes the finalizer; Background or unset:
        # the object goes now and the collector deletes dependents whose owner is gone
        gc_fin = {"Foreground": "foregroundDeletion", "Orphan": "orphan"}.get(
            str(opts.get("propagationPolicy"))
        )
        if gc_fin and not md.get("deletionTimestamp") and gc_fin not in (md.get("finalizers") or []):
            md["finalizers"] = [*(md.get("finalizers") or []), gc_fin]
        if md.get("finalizers") or graceful is not None or kind.kind in ("Namespace", "Tenant"):
            if md.get("deletionTimestamp"):
                return cur  # already being deleted
            md["deletionTimestamp"] = lifecycle.now_rfc3339()
            md["deletionGracePeriodSeconds"] = graceful or 0
            if kind.kind in ("Namespace", "Tenant"):
                cur.setdefault("status", {})["phase"] = "Terminating"
            if call.dry_run:
                return cur
            try:
                return await storage.update(kind, call.tenant, call.ns, name, cur, rev)
            except ApiStatusError as exc:
                if exc.reason == "Conflict":
                    continue
                raise
        if call.dry_run:
            return cur
        try:
            kv = await storage.delete(kind, call.tenant, call.ns, name, rev)
        except ApiStatusError as exc:
            if exc.reason == "Conflict":
                continue
            raise
        md["resourceVersion"] = str(kv.mod_revision)
        if kind.kind == "CustomResourceDefinition":
            await _purge_custom_resources(call, cur)
        return cur
    raise conflict(kind.plural, name, kind.group)


async def _purge_custom_resources(call: Call, crd: dict[str, Any]) -> None:
    """Deleting a CRD deletes its custom resources (in the CRD's tenant), as upstream."""
    for v in (crd.get("spec") or {}).get("versions") or []:
        if v.get("storage"):
            await call.storage.purge(K.kind_from_crd(crd, v.get("name", "")), call.tenant)


def _graceful(call: Call, pod: dict[str, Any], opts: dict[str, Any]) -> int | None:
    """Bound pods on a known node end gracefully: the node agent stops them and deletes with
    grace 0. Unbound pods (or pods of nodes that do not exist) go at once."""
    if call.kind.kind != "Pod":
        return None
    spec = pod.get("spec") or {}
    grace = opts.get("gracePeriodSeconds")
    if grace is None:
        grace = spec.get("terminationGracePeriodSeconds", 30)
    node = spec.get("nodeName")
    if not node or not grace or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return None
    if call.storage.parts[0].kind(NODES.storage_prefix).get(NODES.key("system", None, node)) is None:
        return None
    return int(grace)


async def delete(call: Call) -> web.Response:
    if call.kind.kind == "Tenant" and call.name == "system":
        raise ApiStatusError(403, "the system tenant cannot be deleted", "Forbidden")
    opts = await _delete_options(call)
    out = await delete_one(call, call.name, opts)
    return respond(call, out)


async def delete_collection(call: Call) -> web.Response:
    opts = await _delete_options(call)
    await call.storage.part_for(call.kind, call.tenant).sync()
    pred = selector_of(call)
    names = [
        e.obj["metadata"]["name"]
        for e in call.storage.cached(call.kind, call.tenant, call.ns)
        if pred is None or pred(e.obj)
    ]
    out: list[dict[str, Any]] = []
    for chunk in (names[i : i + 50] for i in range(0, len(names), 50)):
        res = await asyncio.gather(*(delete_one(call, n, opts) for n in chunk), return_exceptions=True)
        out.extend(r for r in res if isinstance(r, dict))
    return encoding.json_response(
        {"kind": call.kind.list_kind, "apiVersion": call.kind.api_version, "metadata": {}, "items": out}
    )
