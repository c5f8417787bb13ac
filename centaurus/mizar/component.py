"""Control-plane bring-up hook (entry-point group ``centaurus.components``): register the
network CRDs in the system tenant, then start N management-plane operator instances
(``network-operator-<i>``, kind ``network-operator``; N from ``CENTAURUS_NETWORK_OPERATORS``,
default 2) -- active-active, splitting the VPCs by hash ring."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from centaurus.client.rest import ApiClient
from centaurus.mizar import crds

KIND = "network-operator"


def components(state: Any) -> list[Any]:
    from centaurus.controlplane.supervisor import Component

    kubeconfig = Path(state.state_dir) / "kubeconfig"
    with ApiClient.from_kubeconfig(str(kubeconfig)) as api:
        crds.ensure(api)
    n = int(os.environ.get("CENTAURUS_NETWORK_OPERATORS", "2"))
    out = []
    for i in range(n):
        name = f"{KIND}-{i}"
        argv = [
            sys.executable,
            "-m",
            "centaurus.mizar",
            "--kubeconfig",
            str(kubeconfig),
            "--instance",
            name,
            "--log-level",
            os.environ.get("CENTAURUS_NETWORK_LOG_LEVEL", "INFO"),
        ]
        out.append(Component(name, argv, kind=KIND))
    return out
