"""What a control plane costs right now, read from /proc and the store's files.

Per component of ``<state_dir>/controlplane.json`` (API server, controller instances, scheduler,
...) and per etcd member (``<state_dir>/etcd-*/etcd-state.json``): CPU seconds (utime+stime),
RSS and PSS (``smaps_rollup``: shared pages split among their users, so a sum over processes
does not count shared libraries twice). Store bytes: the sqlite partition files with their WAL
(``<state_dir>/data/partition-<i>.db*``) or the etcd members' data directories.

Used by the density campaign (per-node and per-pod cost of each component) and by the builtin
target's ``resource_usage()`` (test_scale: totals over the control plane).
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def proc_usage(pid: int) -> dict[str, float] | None:
    """CPU seconds, RSS and PSS bytes of one live process (None when it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        f = stat[stat.rindex(")") + 2 :].split()
        if f[0] == "Z":
            return None
        cpu = (int(f[11]) + int(f[12])) / CLK_TCK
        rss = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    except (OSError, ValueError, IndexError):
        return None
    pss = float(rss)
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                pss = float(int(line.split()[1]) * 1024)
                break
    return {"cpu_seconds": cpu, "rss_bytes": float(rss), "pss_bytes": pss}


def _tree_size(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += (Path(root) / name).stat().st_size
    return total


def store_bytes(state_dir: Path) -> dict[str, int]:
    """Bytes on disk per data partition (sqlite files + WAL, or etcd data dirs)."""
    out: dict[str, int] = {}
    for f in sorted((state_dir / "data").glob("partition-*.db*")) if (state_dir / "data").is_dir() else []:
        key = f.name.split(".db")[0]
        out[key] = out.get(key, 0) + f.stat().st_size
    for f in sorted(state_dir.glob("partition-*.db*")):
        key = f.name.split(".db")[0]
        out[key] = out.get(key, 0) + f.stat().st_size
    for d in sorted(state_dir.glob("etcd-*")):
        if d.is_dir():
            out[d.name] = _tree_size(d)
    return out


def _etcd_pids(state_dir: Path) -> dict[str, int]:
    pids: dict[str, int] = {}
    for sf in sorted(state_dir.glob("etcd-*/etcd-state.json")):
        with contextlib.suppress(OSError, ValueError):
            doc = json.loads(sf.read_text())
            for m in doc.get("members") or ():
                if m.get("pid"):
                    pids[f"{sf.parent.name}-{m.get('name')}"] = int(m["pid"])
    return pids


def components(state_dir: Path) -> dict[str, int]:
    """name -> pid of every process of the control plane under ``state_dir``."""
    out: dict[str, int] = {}
    with contextlib.suppress(OSError, ValueError):
        doc = json.loads((state_dir / "controlplane.json").read_text())
        for c in doc.get("components") or ():
            if c.get("pid"):
                out[str(c["name"])] = int(c["pid"])
    out.update(_etcd_pids(state_dir))
    return out


def control_plane_usage(state_dir: Path | str, extra: dict[str, int] | None = None) -> dict[str, Any]:
    """Totals (``cpu_seconds``, ``rss_bytes``, ``pss_bytes``, ``store_bytes``) plus the per
    component figures (``components``) and per partition store bytes (``stores``). ``extra``
    adds processes by name -> pid (e.g. a hollow-node fleet)."""
    d = Path(state_dir)
    procs = components(d)
    procs.update(extra or {})
    per: dict[str, dict[str, float]] = {}
    for name, pid in procs.items():
        u = proc_usage(pid)
        if u is not None:
            per[name] = {**u, "pid": float(pid)}
    stores = store_bytes(d)
    return {
        "cpu_seconds": sum(u["cpu_seconds"] for u in per.values()),
        "rss_bytes": sum(u["rss_bytes"] for u in per.values()),
        "pss_bytes": sum(u["pss_bytes"] for u in per.values()),
        "store_bytes": sum(stores.values()),
        "components": per,
        "stores": stores,
    }
