"""Builtin-target node hook (entry-point group ``centaurus.node_hooks``): network control for
the deployment the lab describes.

* the default network template: ``mizar`` when the lab runs the Mizar XDP dataplane, else
  ``flat`` (the kernel baseline the agents use there); the system tenant's default Network,
  created by the tenant controller before any template existed, takes the template's type;
* Droplet objects for the lab's droplets (their transit daemons' addresses) -- the same objects
  the node agents' ``mizar`` network hook registers; whoever comes first creates them, the
  other finds them equal;
* capabilities ``networks`` (always) and ``mizar`` (Mizar dataplane).
"""

from __future__ import annotations

import json
import time
from typing import Any

from centaurus.client.rest import ApiError
from centaurus.mizar import model as M

TEMPLATE_NS = "kube-system"
TEMPLATE_NAME = "default-network-template"


def _put_template(api: Any, typ: str) -> None:
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": TEMPLATE_NAME, "namespace": TEMPLATE_NS},
        "data": {"template.json": json.dumps({"spec": {"type": typ}})},
    }
    try:
        api.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": TEMPLATE_NS}})
    except ApiError as exc:
        if exc.code != 409:
            raise
    try:
        api.create("configmaps", body, namespace=TEMPLATE_NS)
    except ApiError as exc:
        if exc.code != 409:
            raise
        cur = api.get("configmaps", TEMPLATE_NAME, namespace=TEMPLATE_NS)
        cur["data"] = body["data"]
        api.replace("configmaps", cur)


def _retype_system_default(api: Any, typ: str, timeout: float = 30.0) -> None:
    """The system tenant's default Network exists before any template: give it the template's
    type (only a default network nobody attached to yet)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            net = api.get("networks", "default", tenant=M.SYSTEM, group_version=M.NETWORK_GV)
            break
        except ApiError as exc:
            if exc.code != 404 or time.monotonic() > deadline:
                return
            time.sleep(0.2)
    if (net.get("spec") or {}).get("type") != typ:
        api.patch("networks", "default", {"spec": {"type": typ}}, tenant=M.SYSTEM, group_version=M.NETWORK_GV)


def _register_droplets(api: Any, lab: Any) -> None:
    for h in lab.hosts("droplet"):
        d = lab.droplet(h.name)
        if not d.transitd:
            continue
        body = {
            "apiVersion": M.GV,
            "kind": "Droplet",
            "metadata": {"name": d.name, "labels": {"kubernetes.io/hostname": d.name}},
            "spec": {"ip": d.ip, "mac": d.mac, "transitd": d.transitd, "itf": d.ifname, "zone": h.zone or ""},
        }
        try:
            api.create("droplets", body, namespace=M.MIZAR_NS, group_version=M.GV)
        except ApiError as exc:
            if exc.code != 409:
                raise


def node_hook(target: Any, ctx: Any) -> None:
    api = target.client()
    lab = ctx.lab
    mizar = lab is not None and getattr(getattr(lab, "dataplane", None), "name", "") == "mizar-xdp"
    typ = "mizar" if mizar else "flat"
    _put_template(api, typ)
    _retype_system_default(api, typ)
    if mizar:
        _register_droplets(api, lab)
        target.add_capability("networks", "mizar")
    else:
        target.add_capability("networks")
    return None
