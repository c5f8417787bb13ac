"""Arktos ``spec.virtualMachine`` -> what the VM runtime needs, and the state it persists.

Arktos vocabulary kept as is: ``powerSpec`` (desired: Running, Paused, Shutdown, Suspended),
``VmPowerState`` (observed: running, paused, shutdown, crashed, suspended, nostate) and ``VmState``
(active, paused, suspended, stopped, error) as they appear in ``status.virtualMachineStatus``.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from centaurus.runtimes.base import RuntimeError_

POWER_SPECS = ("Running", "Paused", "Shutdown", "Suspended")
VM_STATE = {
    "running": "active",
    "paused": "paused",
    "suspended": "suspended",
    "shutdown": "stopped",
    "crashed": "error",
    "nostate": "",
}
DEFAULT_MEM_MB = 128
MIN_MEM_MB = 96  # 64 MB panics this kernel+initramfs (NOTES.md)
_QTY = re.compile(r"^([0-9.]+)([a-zA-Z]*)$")
_UNITS = {
    "": 1,
    "k": 1000,
    "M": 1000**2,
    "G": 1000**3,
    "T": 1000**4,
    "Ki": 1024,
    "Mi": 1024**2,
    "Gi": 1024**3,
    "Ti": 1024**4,
    "m": 0.001,
}


def quantity(q: str | int | float) -> float:
    if isinstance(q, (int, float)):
        return float(q)
    m = _QTY.match(str(q).strip())
    if not m or m.group(2) not in _UNITS:
        raise RuntimeError_("InvalidVmSpec", f"bad resource quantity {q!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


@dataclass
class VmShape:
    name: str
    image: str
    mem_mb: int
    cpus: int
    power_spec: str
    public_keys: tuple[str, ...]
    user_data: bytes


def parse(vm: dict[str, Any] | None) -> VmShape:
    if not vm:
        raise RuntimeError_("InvalidVmSpec", "pod has no spec.virtualMachine")
    name = str(vm.get("name") or "vm")
    image = vm.get("image")
    if not image:
        raise RuntimeError_("InvalidVmSpec", f"virtualMachine {name!r} has no image")
    res = vm.get("resources") or {}
    limits = {**(res.get("requests") or {}), **(res.get("limits") or {})}
    mem_mb = DEFAULT_MEM_MB
    if "memory" in limits:
        mem_mb = max(MIN_MEM_MB, math.ceil(quantity(limits["memory"]) / 1024**2))
    cpus = max(1, math.ceil(quantity(limits["cpu"]))) if "cpu" in limits else 1
    power = str(vm.get("powerSpec") or "Running")
    if power not in POWER_SPECS:
        raise RuntimeError_("InvalidVmSpec", f"powerSpec {power!r} is not one of {', '.join(POWER_SPECS)}")
    keys = tuple(k for k in [vm.get("publicKey")] if k)
    user_data = b""
    if vm.get("userData"):
        raw = vm["userData"]
        try:  # Arktos userData is []byte: base64 on the wire
            user_data = base64.b64decode(raw, validate=True) if isinstance(raw, str) else bytes(raw)
        except (binascii.Error, ValueError):
            user_data = str(raw).encode()
    elif vm.get("cloudInitUserDataScript"):
        user_data = str(vm["cloudInitUserDataScript"]).encode()
    if len(user_data) > 65535:
        raise RuntimeError_("InvalidVmSpec", "userData is limited to 65535 bytes")
    return VmShape(
        name=name,
        image=str(image),
        mem_mb=mem_mb,
        cpus=cpus,
        power_spec=power,
        public_keys=keys,
        user_data=user_data,
    )


@dataclass
class VmRecord:
    """Persisted per VM pod (``<state_dir>/vms/<uid>/vm.json``)."""

    uid: str
    name: str
    spec_json: dict[str, Any]
    image_name: str
    image_ref: str
    image_id: str
    mem_mb: int
    cpus: int
    accel: str
    qmp_sock: str
    ctl_sock: str
    power_spec: str = "Running"
    power_state: str = "nostate"
    pid: int | None = None
    pid_start: int | None = None
    net: dict[str, Any] | None = None
    start_mode: str = ""
    template_key: str = ""
    process_running_s: float | None = None
    guest_ready_s: float | None = None
    boot_wait_s: float | None = None  # cold boot: time spent waiting for a boot slot (bootslots)
    ready: bool = False
    restart_count: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    reason: str = ""
    message: str = ""
    exit_code: int | None = None
    snapshots: dict[str, dict[str, Any]] = field(default_factory=dict)
    suspend_file: str | None = None

    def dump(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=1)

    @classmethod
    def load(cls, text: str) -> VmRecord:
        return cls(**json.loads(text))
