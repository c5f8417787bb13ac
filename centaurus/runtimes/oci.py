"""OCI runtime config (``config.json``) for one container of a pod.

Kubernetes semantics: ``command`` replaces the image ``Entrypoint``, ``args`` replaces its ``Cmd``
(and an explicit ``command`` without ``args`` drops ``Cmd``); ``$(VAR)`` references in both are
expanded from the container environment (``$$`` escapes). The capability set is Docker's default
(so ``ping`` works: NET_RAW). The pod network namespace is joined by path; each container gets its
own pid/ipc/uts/mount namespaces with the pod name as hostname.
"""

from __future__ import annotations

import re
from typing import Any

from centaurus.images import Image
from centaurus.runtimes.base import ContainerSpec, RuntimeError_

DEFAULT_CAPS = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
]
MASKED = [
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
]
READONLY = ["/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
_VAR = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand(value: str, env: dict[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion: unknown references stay as written, ``$$`` -> ``$``."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))

    return _VAR.sub(sub, value)


def process_args(spec: ContainerSpec, image: Image, env: dict[str, str]) -> list[str]:
    entrypoint = list(image.config.get("Entrypoint") or [])
    cmd = list(image.config.get("Cmd") or [])
    if spec.command:
        argv = [*spec.command, *spec.args]
    elif spec.args:
        argv = [*entrypoint, *spec.args]
    else:
        argv = [*entrypoint, *cmd]
    if not argv:
        raise RuntimeError_(
            "CreateContainerError",
            f"container {spec.name!r}: no command given and image {image.name!r} has none",
        )
    return [expand(a, env) for a in argv]


def environment(spec: ContainerSpec, image: Image, hostname: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in image.config.get("Env") or []:
        k, _, v = item.partition("=")
        env[k] = v
    env["HOSTNAME"] = hostname
    for k, v in spec.env.items():
        env[k] = expand(v, env)
    return env


def build_config(
    spec: ContainerSpec, image: Image, *, hostname: str, netns_path: str | None, cgroups_path: str
) -> dict[str, Any]:
    env = environment(spec, image, hostname)
    user: dict[str, Any] = {"uid": spec.run_as_user or 0, "gid": spec.run_as_group or 0}
    if spec.run_as_user is None and image.config.get("User"):
        uid, _, gid = str(image.config["User"]).partition(":")
        if uid.isdigit():
            user = {"uid": int(uid), "gid": int(gid) if gid.isdigit() else 0}
    caps = DEFAULT_CAPS if user["uid"] == 0 else []
    namespaces: list[dict[str, str]] = [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]
    if netns_path:
        namespaces.append({"type": "network", "path": netns_path})
    resources: dict[str, Any] = {"devices": [{"allow": False, "access": "rwm"}]}
    if spec.memory_limit:
        resources["memory"] = {"limit": int(spec.memory_limit)}
    cpu: dict[str, Any] = {}
    if spec.cpu_limit_millis:
        cpu.update(quota=int(spec.cpu_limit_millis) * 100, period=100_000)
    if spec.cpu_request_millis:
        cpu["shares"] = max(2, int(spec.cpu_request_millis) * 1024 // 1000)
    if cpu:
        resources["cpu"] = cpu
    if spec.pids_limit:
        resources["pids"] = {"limit": int(spec.pids_limit)}
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": bool(spec.tty),
            "user": user,
            "args": process_args(spec, image, env),
            "env": [f"{k}={v}" for k, v in env.items()],
            "cwd": spec.working_dir or image.config.get("WorkingDir") or "/",
            "capabilities": {k: caps for k in ("bounding", "effective", "permitted")},
            "noNewPrivileges": False,
        },
        "root": {"path": "rootfs", "readonly": False},
        "hostname": hostname,
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {
                "destination": "/dev",
                "type": "tmpfs",
                "source": "tmpfs",
                "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
            },
            {
                "destination": "/dev/pts",
                "type": "devpts",
                "source": "devpts",
                "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
            },
            {
                "destination": "/dev/shm",
                "type": "tmpfs",
                "source": "shm",
                "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
            },
            {
                "destination": "/dev/mqueue",
                "type": "mqueue",
                "source": "mqueue",
                "options": ["nosuid", "noexec", "nodev"],
            },
            {
                "destination": "/sys",
                "type": "sysfs",
                "source": "sysfs",
                "options": ["nosuid", "noexec", "nodev", "ro"],
            },
        ],
        "linux": {
            "cgroupsPath": cgroups_path,
            "resources": resources,
            "namespaces": namespaces,
            "maskedPaths": MASKED,
            "readonlyPaths": READONLY,
        },
    }
