"""Target: this project's own control plane, started by the harness (as ``centaurus up`` does).

``up(ctx)`` starts store(s), API server and controllers under ``ctx.state_dir`` on loopback. The
store and partition count come from the target options (``--target builtin,store=etcd,
partitions=2``), else from the lab spec's ``control:`` section, else sqlite x 2 (two partitions,
so tenant data partitions are real in every run). With a lab, the control plane still runs in the
root network namespace; node components on the lab's droplets are started by the callables in
:data:`NODE_HOOKS`, which the Compute and Network issues fill.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from centaurus.client.rest import ApiClient, ApiError
from centaurus.targets.base import CAPABILITIES, TargetContext, TargetError

#: ``hook(target, ctx) -> stop callable or None``: start node components (agents, transitd, ...)
#: once the control plane is up; called in order, stopped in reverse order on ``down``.
NODE_HOOKS: list[Callable[[BuiltinTarget, TargetContext], Callable[[], None] | None]] = []
#: the same, registered by packages under the ``centaurus.node_hooks`` entry-point group
NODE_HOOK_GROUP = "centaurus.node_hooks"


def _node_hooks() -> list[Callable[[BuiltinTarget, TargetContext], Callable[[], None] | None]]:
    from importlib.metadata import entry_points

    eps = sorted(entry_points(group=NODE_HOOK_GROUP), key=lambda e: e.name)
    return [*NODE_HOOKS, *(ep.load() for ep in eps)]


BASE_CAPABILITIES = frozenset(
    {"api", "tenants", "tenant-paths", "rbac", "data-partitions", "fault-injection"}
)


class BuiltinTarget:
    name = "builtin"
    #: the builtin implementation promises the whole whitepaper: a missing capability is a
    #: requirement not met yet, never "not applicable"
    promised_capabilities = frozenset(CAPABILITIES)
    #: This project implements the whole whitepaper: a capability it lacks is not built yet, so the
    #: conformance suite fails (not-met) instead of reporting it not-applicable.
    promised_capabilities = frozenset(CAPABILITIES)

    def __init__(self, arg: str | None = None, options: Mapping[str, str] | None = None) -> None:
        self.arg = arg
        self.options = dict(options or {})
        self.ctx: TargetContext | None = None
        self._cp: Any = None
        self._clients: dict[tuple[str, str], ApiClient] = {}
        self._stops: list[Callable[[], None]] = []
        self._extra_caps: set[str] = set()
        #: brought by node hooks: fault-injection component providers and conformance hook methods
        self._providers: list[Any] = []
        self._hooks: dict[str, Callable[..., Any]] = {}

    # ---- lifecycle -------------------------------------------------------------------------------
    def _control_spec(self, ctx: TargetContext) -> tuple[str, int]:
        control: dict[str, Any] = {}
        spec = getattr(ctx.lab, "spec", None) if ctx.lab is not None else None
        if spec is not None:
            c = getattr(spec, "control", None)
            control = dict(c) if isinstance(c, Mapping) else dict(getattr(c, "__dict__", {}) or {})
        store = str(self.options.get("store") or ctx.options.get("store") or control.get("store") or "sqlite")
        parts = int(
            self.options.get("partitions") or ctx.options.get("partitions") or control.get("partitions") or 2
        )
        return store, parts

    def up(self, ctx: TargetContext) -> None:
        from centaurus.controlplane.supervisor import ControlPlane, ControlPlaneError

        self.ctx = ctx
        store, parts = self._control_spec(ctx)
        self._cp = ControlPlane(ctx.state_dir)
        try:
            self._cp.up(store=store, partitions=parts, port=0)
        except (ControlPlaneError, OSError) as exc:
            raise TargetError(f"builtin control plane did not start: {exc}") from None
        for hook in _node_hooks():
            try:
                stop = hook(self, ctx)
            except Exception as exc:
                self.down()
                raise TargetError(f"node components did not start: {exc}") from None
            if stop is not None:
                self._stops.append(stop)

    def down(self) -> None:
        for c in self._clients.values():
            with contextlib.suppress(Exception):
                c.close()
        self._clients.clear()
        while self._stops:
            with contextlib.suppress(Exception):
                self._stops.pop()()
        if self._cp is not None:
            self._cp.down()

    def add_component_provider(self, provider: Any) -> None:
        """Node hooks add components (agents, ...): ``provider.components()`` lists them,
        ``stop_component(name)``/``start_component(name)`` act on the ones it listed."""
        self._providers.append(provider)

    def add_hook_method(self, name: str, fn: Callable[..., Any]) -> None:
        """Conformance hooks a node hook implements (``add_hollow_nodes``, ``resource_usage``...)."""
        self._hooks[name] = fn

    def __getattr__(self, name: str) -> Any:
        hooks = self.__dict__.get("_hooks") or {}
        if name in hooks:
            return hooks[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def _provider_of(self, name: str) -> Any:
        for p in self._providers:
            if any(c.get("name") == name for c in p.components()):
                return p
        return None

    def add_capability(self, *caps: str) -> None:
        """Node hooks declare what they bring (``nodes``, ``vm-pods``, ``networks``...)."""
        self._extra_caps.update(caps)

    def capabilities(self) -> frozenset[str]:
        return BASE_CAPABILITIES | self._extra_caps

    # ---- credentials -------------------------------------------------------------------------
    def _need_up(self) -> Any:
        if self._cp is None or self.ctx is None:
            raise TargetError("the builtin target is not up")
        return self._cp

    def kubeconfig(self, tenant: str = "system", user: str = "admin", auth: str = "both") -> Path:
        cp = self._need_up()
        if tenant == "system" and user == "admin" and auth == "both":
            return Path(cp.kubeconfig)
        from centaurus.controlplane.credentials import mint_kubeconfig

        st = cp.load()
        out = Path(cp.dir) / "kubeconfigs" / f"{tenant}-{user}-{auth}.yaml"
        if not out.exists():
            mint_kubeconfig(Path(cp.dir), st.server, tenant, user, out, method=auth)
        return out

    def client(self, tenant: str = "system", user: str = "admin") -> ApiClient:
        key = (tenant, user)
        if key not in self._clients:
            self._clients[key] = ApiClient.from_kubeconfig(str(self.kubeconfig(tenant, user)))
        return self._clients[key]

    def ensure_tenant(self, name: str, storage_cluster: str | None = None) -> None:
        api = self.client()
        try:
            t = api.get("tenants", name)
        except ApiError as exc:
            if exc.code != 404:
                raise
            body: dict[str, Any] = {
                "apiVersion": "v1",
                "kind": "Tenant",
                "metadata": {"name": name},
                "spec": {},
            }
            if storage_cluster is not None:
                body["spec"]["storageClusterId"] = storage_cluster
            t = api.create("tenants", body)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if t.get("status", {}).get("phase") == "Active" and not t["metadata"].get("deletionTimestamp"):
                # the tenant controller gives every tenant its default namespace
                with contextlib.suppress(ApiError):
                    api.get("namespaces", "default", tenant=name)
                    return
            elif t["metadata"].get("deletionTimestamp"):
                raise TargetError(f"tenant {name} is being deleted")
            time.sleep(0.05)
            with contextlib.suppress(ApiError):
                t = api.get("tenants", name)
        raise TargetError(f"tenant {name} did not become Active with its default namespace in 30 s")

    # ---- fault injection (conformance hooks: components / stop_component / start_component) -----
    def components(self) -> list[dict[str, Any]]:
        cp = self._need_up()
        st = cp.load()
        out: list[dict[str, Any]] = []
        for c in st.components:
            kind = c.kind or ("controller" if c.name.startswith("controllers") else c.name.split("-", 1)[0])
            out.append({"name": c.name, "kind": kind, "zone": None, "partition": None, "pid": c.pid})
        for i in range(st.partitions):
            name = f"etcd-{i}" if st.store == "etcd" else f"store-{i}"
            out.append({"name": name, "kind": "store", "zone": None, "partition": str(i), "store": st.store})
        for p in self._providers:
            out += p.components()
        return out

    def _store_state(self, name: str, state: str) -> None:
        cp = self._need_up()
        st = cp.load()
        idx = int(name.rsplit("-", 1)[1])
        if st.store == "etcd":
            from centaurus.store.etcdproc import EtcdCluster

            cluster = EtcdCluster(cp.dir, 1, name=f"etcd-{idx}")
            if state == "down":
                cluster.kill(0)
            else:
                cluster.restart(0)
            return
        # sqlite partitions live inside the API server process: it closes / reopens the file
        self.client().request("PUT", f"/debug/partitions/{idx}", body={"state": state})

    def stop_component(self, name: str) -> None:
        provider = self._provider_of(name)
        if provider is not None:
            provider.stop_component(name)
        elif name.startswith(("store-", "etcd-")):
            self._store_state(name, "down")
        else:
            self._need_up().kill(name)

    def start_component(self, name: str) -> None:
        provider = self._provider_of(name)
        if provider is not None:
            provider.start_component(name)
        elif name.startswith(("store-", "etcd-")):
            self._store_state(name, "up")
        else:
            self._need_up().start(name)

    def describe(self) -> dict[str, Any]:
        info: dict[str, Any] = {"name": self.name}
        if self._cp is not None:
            st = self._cp.status()
            info.update(
                server=st.get("server"),
                store=st.get("store"),
                partitions=st.get("partitions"),
                components=[c["name"] for c in st.get("components", [])],
            )
            with contextlib.suppress(Exception):
                info["version"] = self.client().get_json("/version").get("gitVersion")
            info["capabilities"] = sorted(self.capabilities())
        return info
