"""VM pod actions (Arktos ``POST .../pods/{pod}/action``): reboot, stop/start, pause/resume,
snapshot/restore, suspend. Each runs under the VM's lock and leaves ``rec.power_state`` right.

Snapshots are full migrations to ``<state_dir>/vms/<uid>/snapshots/<name>.state`` taken with the
vCPUs stopped (consistent); restore starts a new qemu from one and re-seeds clock and identity
(the guest agent was idle in its command loop when the snapshot was taken).
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from centaurus.runtimes.base import RuntimeError_
from centaurus.runtimes.vm.spec import VmRecord

if TYPE_CHECKING:
    from centaurus.runtimes.vm.runtime import VmRuntime

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
ALIASES = {
    "shutdown": "stop",
    "poweroff": "stop",
    "poweron": "start",
    "unpause": "resume",
    "restoretosnapshot": "restore",
    "createsnapshot": "snapshot",
}


def _snap_name(params: dict[str, Any], key: str, default: str | None) -> str:
    nested = params.get(f"{key.removesuffix('Name').removesuffix('ID')}Action") or {}
    name = (
        params.get(key)
        or nested.get(key)
        or params.get("name")
        or params.get("snapshotName")
        or params.get("snapshotID")
        or default
    )
    if not name or not _NAME.match(str(name)):
        raise RuntimeError_("InvalidAction", f"bad or missing snapshot name {name!r}")
    return str(name)


async def run_action(rt: VmRuntime, rec: VmRecord, action: str, params: dict[str, Any]) -> dict[str, Any]:
    action = ALIASES.get(action, action)
    m = rt._machines.get(rec.uid)
    t0 = time.monotonic()
    if action == "reboot":
        if m is None or rec.power_state != "running":
            raise RuntimeError_("VmNotRunning", f"cannot reboot a VM that is {rec.power_state}")
        rec.ready, rec.guest_ready_s = False, None
        m.ch.mark_unready()
        m.t_spawn = time.monotonic()  # guest-ready time of a reboot counts from the reset
        await m.qmp.execute("system_reset")  # the guest boots again; its WAIT triggers provisioning
        if params.get("wait", True):
            await m.ch.wait_ready(float(params.get("timeout", 120)))
        return {"rebootSeconds": time.monotonic() - t0}
    if action == "stop":
        await rt._power_off(rec, float(params.get("gracePeriodSeconds", 10)))
        rec.power_spec = "Shutdown"
        return {}
    if action == "start":
        if rec.power_state in ("running",):
            return {}
        if rec.power_state == "paused" and m is not None:
            await m.qmp.execute("cont")
            rec.power_state = "running"
            await rt._provision(rec.uid, m)  # the clock stood still while paused
        elif rec.power_state == "suspended" and rec.suspend_file:
            await rt._boot(rec, snapshot=Path(rec.suspend_file))
        else:
            rec.restart_count += 1
            await rt._boot(rec)
        rec.power_spec = "Running"
        if params.get("wait", True) and rt._machines.get(rec.uid) is not None:
            await rt._machines[rec.uid].ch.wait_ready(float(params.get("timeout", 120)))
        return {"startSeconds": time.monotonic() - t0, "startMode": rec.start_mode}
    if action == "pause":
        if m is None or rec.power_state != "running":
            raise RuntimeError_("VmNotRunning", f"cannot pause a VM that is {rec.power_state}")
        await m.qmp.execute("stop")
        rec.power_state, rec.power_spec = "paused", "Paused"
        return {}
    if action == "resume":
        if m is None or rec.power_state != "paused":
            raise RuntimeError_("VmNotPaused", f"cannot resume a VM that is {rec.power_state}")
        await m.qmp.execute("cont")
        rec.power_state, rec.power_spec = "running", "Running"
        await rt._provision(rec.uid, m)
        return {}
    if action in ("snapshot", "suspend"):
        if m is None or rec.power_state not in ("running", "paused"):
            raise RuntimeError_("VmNotRunning", f"cannot snapshot a VM that is {rec.power_state}")
        name = (
            "suspend"
            if action == "suspend"
            else _snap_name(params, "snapshotName", f"snap-{len(rec.snapshots) + 1}")
        )
        path = rt.vms_dir / rec.uid / "snapshots" / f"{name}.state"
        was_running = rec.power_state == "running"
        if was_running:
            await m.qmp.execute("stop")
        info = await m.save(path)
        if action == "suspend":
            rec.suspend_file = str(path)
            await rt._power_off(rec, 0, state="suspended")
            rec.power_spec = "Suspended"
            return {"suspendSeconds": time.monotonic() - t0}
        if was_running:
            await m.qmp.execute("cont")
            rec.power_state = "running"
        size = path.stat().st_size
        rec.snapshots[name] = {
            "path": str(path),
            "created": time.time(),
            "bytes": size,
            "powerState": "running" if was_running else "paused",
        }
        return {
            "snapshotID": name,
            "snapshotSeconds": time.monotonic() - t0,
            "bytes": size,
            "downtimeMs": info.get("downtime"),
        }
    if action == "restore":
        name = _snap_name(params, "snapshotID", None)
        snap = rec.snapshots.get(name)
        if snap is None:
            raise RuntimeError_(
                "SnapshotNotFound",
                f"VM {rec.name!r} has no snapshot {name!r}"
                f" (has: {', '.join(sorted(rec.snapshots)) or 'none'})",
            )
        if m is not None:
            await rt._power_off(rec, 0, state="shutdown")
        await rt._boot(rec, snapshot=Path(snap["path"]))
        if params.get("wait", True):
            await rt._machines[rec.uid].ch.wait_ready(float(params.get("timeout", 60)))
        rec.power_spec = "Running"
        return {"snapshotID": name, "restoreSeconds": time.monotonic() - t0}
    raise RuntimeError_(
        "InvalidAction",
        f"unknown VM action {action!r} (reboot, stop, start, pause, resume, snapshot, restore, suspend)",
    )
