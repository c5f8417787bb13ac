"""``centaurus up | down | status | kubeconfig`` and ``centaurus tenant create|list|delete``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from centaurus.cli.common import console, fail

DEFAULT_STATE = Path("~/.centaurus")
StateDir = Annotated[Path, typer.Option("--state-dir", "-d", help="state dir of the control plane")]

tenant_app = typer.Typer(help="Manage tenants of the running control plane.", no_args_is_help=True)


def up(
    store: Annotated[str, typer.Option(help="sqlite | etcd")] = "sqlite",
    partitions: Annotated[int, typer.Option(help="data partitions (one store each)")] = 1,
    port: Annotated[int, typer.Option(help="API server port on 127.0.0.1 (0 = any free port)")] = 6443,
    state_dir: StateDir = DEFAULT_STATE,
) -> None:
    """Start the builtin control plane (store, API server, controllers) in the background."""
    from centaurus.controlplane.supervisor import ControlPlane, ControlPlaneError

    cp = ControlPlane(state_dir)
    t0 = time.monotonic()
    try:
        st = cp.up(store=store, partitions=partitions, port=port)
    except (ControlPlaneError, OSError) as exc:
        fail(str(exc))
    console.print(
        f"control plane up in {time.monotonic() - t0:.1f} s: {st.server} "
        f"({st.store} x{st.partitions}); kubeconfig {cp.kubeconfig}",
        highlight=False,
        soft_wrap=True,
    )


def down(state_dir: StateDir = DEFAULT_STATE) -> None:
    """Stop everything the control plane runs under the state dir."""
    from centaurus.controlplane.supervisor import ControlPlane

    stopped = ControlPlane(state_dir).down()
    console.print(
        "stopped: " + (", ".join(stopped) if stopped else "nothing was running"),
        highlight=False,
        soft_wrap=True,
    )


def status(state_dir: StateDir = DEFAULT_STATE) -> None:
    """Report what runs."""
    from centaurus.controlplane.supervisor import ControlPlane

    st = ControlPlane(state_dir).status()
    if not st.get("components"):
        console.print(f"not running (state dir {st['state_dir']})", highlight=False, soft_wrap=True)
        raise typer.Exit(3)
    console.print(
        f"server {st['server']}  store {st['store']} x{st['partitions']}  kubeconfig {st['kubeconfig']}",
        highlight=False,
        soft_wrap=True,
    )
    for c in st["components"]:
        console.print(
            f"  {c['name']:<14} pid {c['pid']:<8} {'running' if c['alive'] else 'DEAD'}  {c['log']}",
            highlight=False,
            soft_wrap=True,
        )
    for i, eps in enumerate(st.get("etcd") or []):
        console.print(f"  etcd-{i:<9} {eps}", highlight=False, soft_wrap=True)
    if not st["running"]:
        raise typer.Exit(1)


def _server(state_dir: Path) -> str:
    from centaurus.controlplane.supervisor import ControlPlane

    st = ControlPlane(state_dir).load()
    if st is None or not st.server:
        fail(f"no control plane runs under {state_dir} (run 'centaurus up')")
    return st.server


def kubeconfig(
    tenant: Annotated[str, typer.Option(help="tenant of the user")] = "system",
    user: Annotated[str, typer.Option(help="user name ('admin' = the tenant's administrator)")] = "admin",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="file to write")] = None,
    auth: Annotated[str, typer.Option(help="token | cert | both")] = "both",
    state_dir: StateDir = DEFAULT_STATE,
) -> None:
    """Write a kubeconfig for a tenant user (token or client certificate)."""
    from centaurus.controlplane.credentials import mint_kubeconfig

    if auth not in ("token", "cert", "both"):
        fail("--auth must be token, cert or both")
    server = _server(state_dir)
    out = output or Path(state_dir).expanduser() / f"kubeconfig-{tenant}-{user}"
    mint_kubeconfig(Path(state_dir).expanduser(), server, tenant, user, out, method=auth)
    console.print(str(out), highlight=False, soft_wrap=True)


@tenant_app.command("create")
def tenant_create(
    name: Annotated[str, typer.Argument(help="tenant name (DNS label)")],
    storage_cluster: Annotated[str, typer.Option("--storage-cluster", help="data partition index")] = "",
    state_dir: StateDir = DEFAULT_STATE,
) -> None:
    """Create a tenant and wait until it is Active."""
    from centaurus.client.rest import ApiClient, ApiError

    _server(state_dir)
    body = {
        "apiVersion": "v1",
        "kind": "Tenant",
        "metadata": {"name": name},
        "spec": {"storageClusterId": storage_cluster} if storage_cluster else {},
    }
    with ApiClient.from_kubeconfig(str(Path(state_dir).expanduser() / "kubeconfig")) as api:
        try:
            t = api.create("tenants", body)
        except ApiError as exc:
            fail(str(exc))
    console.print(
        f"tenant/{name} {t.get('status', {}).get('phase', '')} "
        f"(data partition {t.get('spec', {}).get('storageClusterId', '')})",
        highlight=False,
        soft_wrap=True,
    )


@tenant_app.command("list")
def tenant_list(state_dir: StateDir = DEFAULT_STATE) -> None:
    """List tenants."""
    from centaurus.client.rest import ApiClient

    _server(state_dir)
    with ApiClient.from_kubeconfig(str(Path(state_dir).expanduser() / "kubeconfig")) as api:
        for t in api.list("tenants")["items"]:
            console.print(
                f"{t['metadata']['name']:<24} {t.get('status', {}).get('phase', ''):<12} "
                f"partition {t.get('spec', {}).get('storageClusterId', '')}",
                highlight=False,
                soft_wrap=True,
            )


@tenant_app.command("delete")
def tenant_delete(name: Annotated[str, typer.Argument()], state_dir: StateDir = DEFAULT_STATE) -> None:
    """Delete a tenant (it goes Terminating, then disappears with everything in it)."""
    from centaurus.client.rest import ApiClient, ApiError

    _server(state_dir)
    with ApiClient.from_kubeconfig(str(Path(state_dir).expanduser() / "kubeconfig")) as api:
        try:
            api.delete("tenants", name)
        except ApiError as exc:
            fail(str(exc))
    console.print(f"tenant/{name} deleting", highlight=False, soft_wrap=True)
