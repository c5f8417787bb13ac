"""Builtin-target node hook (entry-point group ``centaurus.node_hooks``): network control for
the deployment the lab describes.

* the default network template: ``mizar`` when the lab runs the Mizar XDP dataplane, else
  ``flat`` (the kernel baseline the agents use there); the system tenant's default Network,
  created by the tenant controller before any template existed, takes the template's type;
* (droplets are NOT registered here: each node agent's ``mizar`` network hook registers its own
  droplet when it starts, as Mizar's per-node daemon does);
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


def node_hook(target: Any, ctx: Any) -> None:
    api = target.client()
    lab = ctx.lab
    mizar = lab is not None and getattr(getattr(lab, "dataplane", None), "name", "") == "mizar-xdp"
    typ = "mizar" if mizar else "flat"
    _put_template(api, typ)
    _retype_system_default(api, typ)
    if mizar:
        target.add_capability("networks", "mizar")
    else:
        target.add_capability("networks")
    return None
