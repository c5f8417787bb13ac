"""The per-host transit daemon through its CLI, the way an operator troubleshoots a host.

``centaurus transit --address <droplet.transitd> <verb> [-o json]``: verbs ``status``, ``dump``
(every VPC, network, endpoint, bouncer, divider programmed on that host), ``stats``,
``update-ep --json '<endpoint>'``, ``delete-ep --vni N --ip A``. The CLI speaks the daemon's RPC
interface, so a working CLI also proves the RPC path (NET-6).
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

CLI = [sys.executable, "-m", "centaurus.cli.main", "transit"]


def transit(lab: Any, droplet: str, *args: str, timeout: float = 30.0,
            check: bool = True) -> subprocess.CompletedProcess[str]:
    address = lab.droplet(droplet).transitd
    assert address, f"droplet {droplet} has no transitd address"
    cp = subprocess.run([*CLI, "--address", address, *args], capture_output=True, text=True, timeout=timeout,
                        stdin=subprocess.DEVNULL)
    if check and cp.returncode != 0:
        raise AssertionError(f"centaurus transit {' '.join(args)} on {droplet} exited {cp.returncode}: "
                             f"{(cp.stderr or cp.stdout).strip()[-500:]}")
    return cp


def dump(lab: Any, droplet: str) -> dict[str, Any]:
    """``{"vpcs": [...], "networks": [...], "endpoints": [{"vni", "ip", "host", ...}], ...}``."""
    doc: dict[str, Any] = json.loads(transit(lab, droplet, "dump", "-o", "json").stdout)
    return doc


def endpoint_keys(doc: dict[str, Any]) -> set[tuple[int, str]]:
    return {(int(e["vni"]), str(e["ip"])) for e in doc.get("endpoints", [])}
