"""``netns`` lab backend: a whole Centaurus deployment as network namespaces on this machine.

Layout (names in :mod:`centaurus.labs.topology`): a switch netns bridging one veth per droplet (or
one veth pair between two droplets for perf specs), one netns per droplet, one netns per static
endpoint with a veth into its droplet. The dataplane named by the spec or ``dataplane=`` option
is then programmed through the :class:`~centaurus.dataplane.base.Dataplane` interface; per-droplet
daemons it asks for (transitd) run inside their droplet's netns and are owned by the lab.

Crash safety: every namespace is recorded in ``lab.json`` before it is created, every daemon right
after it starts; ``down`` kills recorded daemons and every process found inside the lab's
namespaces (by pid, checked against its start time), deletes the namespaces (which removes every
link and the XDP programs attached to them) and the lab's bpffs directory. It is idempotent and
works from a fresh process (``centaurus lab down --state-dir D``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from centaurus import BPFFS_ROOT, PREFIX, plugins
from centaurus.dataplane.base import (
    Dataplane,
    DropletInfo,
    EndpointInfo,
    Unsupported,
)
from centaurus.labs import nsutil, topology
from centaurus.labs.base import Host, LabError
from centaurus.labs.spec import EndpointSpec, LabSpec, parse_endpoint, parse_spec
from centaurus.labs.speclab import SpecLab
from centaurus.labs.state import LabState, ProcRecord, resolve_state_dir

log = logging.getLogger("centaurus.labs.netns")
SOCKET_MAX = 107  # sun_path


class NetnsLab(SpecLab):
    """The lab handle of CONTRACTS.md for the netns backend."""

    name = "netns"

    def __init__(self, state_dir: Path, options: dict[str, str] | None = None) -> None:
        self.state_dir = resolve_state_dir(Path(state_dir)).absolute()
        self.options = dict(options or {})
        self.spec: LabSpec | None = None
        self.dataplane: Any = None
        self._state: LabState | None = LabState.load(self.state_dir)
        self._popens: list[subprocess.Popen[bytes]] = []
        if self._state is not None and self._state.phase in ("up", "creating"):
            self._attach()

    # ---- bring-up ---------------------------------------------------------------------------
    def up(self, spec: LabSpec) -> None:
        if self._state is not None and self._state.phase in ("up", "creating"):
            raise LabError(f"a lab (id {self._state.id}) is already up in {self.state_dir}; "
                           f"run 'centaurus lab down --state-dir {self.state_dir}' first")
        dp_name = self.options.get("dataplane") or spec.dataplane
        lab_id = self.options.get("id") or self._free_id()
        if not lab_id.isalnum() or len(lab_id) > 8:
            raise LabError(f"lab id {lab_id!r} must be 1-8 letters/digits")
        self._check_socket_len(spec)
        dp_options = {k: v for k, v in self.options.items() if k not in ("dataplane", "id")}
        dp_options.update(lab_id=lab_id, state_dir=str(self.state_dir))
        dp_cls = plugins.load("dataplane", dp_name)
        plan = topology.plan_lab(spec, lab_id)
        self.spec = spec
        self._state = LabState(id=lab_id, backend=self.name, dataplane=dp_name, spec=spec.to_dict(),
                               options=dp_options, netns=list(plan.netns.values()),
                               bpffs=f"{BPFFS_ROOT}/{lab_id}")
        self._save()  # BEFORE anything exists
        try:
            self.dataplane = dp_cls(options=dp_options)
            t0 = time.monotonic()
            self._create(plan)
            log.info("lab %s: %d netns in %.0f ms", lab_id, len(plan.netns), (time.monotonic() - t0) * 1e3)
            self._start_daemons()
            self._program()
            self._state.phase = "up"
            self._save()
        except BaseException:
            with contextlib.suppress(Exception):
                self.down()
            raise

    def _free_id(self) -> str:
        for _ in range(64):
            cand = secrets.token_hex(2)
            if not nsutil.list_netns(f"{PREFIX}{cand}-") and not Path(f"{BPFFS_ROOT}/{cand}").exists():
                return cand
        raise LabError("no free lab id found")

    def _check_socket_len(self, spec: LabSpec) -> None:
        longest = max(len(d.name) for d in spec.droplets)
        if len(str(self.state_dir / ("transitd-" + "x" * longest + ".sock"))) > SOCKET_MAX:
            raise LabError(f"state dir {self.state_dir} is too long for unix sockets (max {SOCKET_MAX} "
                           "chars with the socket name); use a shorter --state-dir")

    def _create(self, plan: topology.Plan) -> None:
        nsutil.ip_batch(plan.root)
        bridge_nf = int(self.options.get("bridge_nf", "1"))
        sysctls = topology.droplet_sysctls(bridge_nf)
        droplet_ns = {topology.netns_name(self._id, d.name) for d in self._spec.droplets}

        def configure(ns: str) -> None:
            nsutil.ip_batch(plan.per_netns.get(ns, []), netns=ns)

            def inside() -> None:
                if ns in droplet_ns:
                    nsutil.write_sysctls(sysctls)
                nsutil.set_gro(plan.gro.get(ns, []))

            nsutil.in_netns(ns, inside)

        # switch first (bridge ports), then droplets (endpoint veths live there), then endpoints
        for ns in plan.netns.values():
            configure(ns)
        self._attach_peers(plan)

    def _attach_peers(self, plan: topology.Plan) -> None:
        """XDP dataplanes: XDP_PASS on endpoint eth0s and switch ports (see xdppeers)."""
        if not getattr(self.dataplane, "needs_xdp_peers", False):
            return
        from centaurus.labs.xdppeers import PassProgram

        prog = PassProgram()
        try:
            for host, ns in plan.netns.items():
                if host == topology.SWITCH:
                    prog.attach(ns, [topology.switch_port(d.name) for d in self._spec.droplets])
                elif host not in {d.name for d in self._spec.droplets}:
                    prog.attach(ns, [topology.ENDPOINT_IF])
                    nsutil.in_netns(ns, lambda: nsutil.set_tx_csum([topology.ENDPOINT_IF], False))
        finally:
            prog.close()

    def _droplet_infos(self) -> dict[str, DropletInfo]:
        st = self._st
        return {d.name: DropletInfo(name=d.name, netns=topology.netns_name(st.id, d.name), ip=d.ip,
                                    mac=topology.mac_for(st.id, "droplet", d.name),
                                    ifname=topology.SUBSTRATE_IF, transitd=st.sockets.get(d.name, ""))
                for d in self._spec.droplets}

    def _start_daemons(self) -> None:
        st = self._st
        dp: Dataplane = self.dataplane
        for d in self._spec.droplets:
            st.sockets[d.name] = f"unix:{self.state_dir}/transitd-{d.name}.sock"
        infos = self._droplet_infos()
        started: list[tuple[str, subprocess.Popen[bytes]]] = []
        for name, info in infos.items():
            p = self._spawn_daemon(info)
            if p is not None:
                started.append((name, p))
        if not started:
            st.sockets.clear()
        self._save()
        wait = getattr(dp, "wait_ready", None)
        if started and callable(wait):
            for name, p in started:
                wait(infos[name], proc=p, log=self.state_dir / f"transitd-{name}.log")

    def _spawn_daemon(self, info: DropletInfo) -> subprocess.Popen[bytes] | None:
        argv = self.dataplane.daemon_argv(info)
        if not argv:
            return None
        logf = open(self.state_dir / f"transitd-{info.name}.log", "ab")  # noqa: SIM115 -- the child's
        try:
            p = subprocess.Popen(nsutil.nsenter_argv(info.netns, argv), stdin=subprocess.DEVNULL,
                                 stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            logf.close()
        self._st.procs.append(ProcRecord(p.pid, nsutil.proc_starttime(p.pid), "transitd", info.name))
        self._save()
        return p

    def restart_daemon(self, droplet: str, sig: int = signal.SIGKILL, wait: bool = True) -> int:
        """Kill the droplet's daemon with ``sig`` (default: a crash) and start a new one, which
        adopts the pinned maps and attached programs; returns the new pid. The dataplane keeps
        forwarding meanwhile -- that is what the restart tests check."""
        st = self._st
        info = self.droplet(droplet)
        old = [p for p in st.procs if p.role == "transitd" and p.host == droplet]
        for p in old:
            if nsutil.alive(p.pid, p.starttime):
                os.kill(p.pid, sig)
        nsutil.kill_pids([(p.pid, p.starttime) for p in old], grace=5.0)
        st.procs = [p for p in st.procs if p not in old]
        proc = self._spawn_daemon(info)
        if proc is None:
            raise LabError(f"dataplane {st.dataplane} runs no daemon on {droplet}")
        waiter = getattr(self.dataplane, "wait_ready", None)
        if wait and waiter is not None:
            waiter(info, proc=proc, log=self.state_dir / f"transitd-{droplet}.log")
        return proc.pid

    def hosts(self, role: str | None = None) -> list[Host]:
        spec, st = self._spec, self._st
        out: list[Host] = []
        if spec.substrate.mode == "switch":
            out.append(Host(topology.SWITCH, "switch", netns=topology.netns_name(st.id, topology.SWITCH)))
        for d in spec.droplets:
            out.append(Host(d.name, "droplet", address=d.ip, zone=d.zone or None,
                            netns=topology.netns_name(st.id, d.name)))
        for e in spec.endpoints:
            if e.kind == "simple":
                out.append(Host(e.name, "endpoint", address=e.ip, netns=topology.netns_name(st.id, e.name),
                                labels={"network": e.network, "host": e.host}))
        return [h for h in out if role is None or h.role == role]

    def _netns_of(self, host: str) -> str:
        if host == "switch":
            host = topology.SWITCH
        for h in self.hosts():
            if h.name == host and h.netns:
                return h.netns
        raise LabError(f"lab {self._st.id} has no host named {host!r}")

    # ---- running things inside hosts ------------------------------------------------------------
    def run(self, host: str, argv: Sequence[str], *, timeout: float = 30.0, check: bool = True,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        cmd = nsutil.nsenter_argv(self._netns_of(host), argv)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=check,
                              input=input, stdin=None if input is not None else subprocess.DEVNULL)

    def popen(self, host: str, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        p: subprocess.Popen[bytes] = subprocess.Popen(nsutil.nsenter_argv(self._netns_of(host), argv),
                                                      **kwargs)
        self._popens.append(p)
        return p

    # ---- dynamic endpoints ----------------------------------------------------------------------
    def add_endpoint(self, spec_dict: dict[str, Any]) -> EndpointInfo:
        spec, st = self._spec, self._st
        ep = parse_endpoint(spec, spec_dict)
        doc = spec.to_dict()
        new_spec = parse_spec({**doc, "endpoints": [*doc["endpoints"], _ep_dict(ep)]}, source="add_endpoint")
        if ep.kind == "simple":
            plan = topology.plan_endpoint(new_spec, st.id, ep)
            st.netns.append(plan.netns[ep.name])
        st.spec = new_spec.to_dict()
        self.spec = new_spec
        self._save()
        if ep.kind == "simple":
            nsutil.ip_batch(plan.root)
            for ns, lines in plan.per_netns.items():
                nsutil.ip_batch(lines, netns=ns)
                devs = plan.gro.get(ns, [])
                nsutil.in_netns(ns, lambda devs=devs: nsutil.set_gro(devs))  # type: ignore[misc]
            self._attach_peers(topology.Plan(netns=plan.netns, root=[], per_netns={}, gro={}))
        self._apply_endpoint(ep)
        if ep.kind == "simple":  # a droplet with its first endpoint of a VPC needs its scaled ones
            vpc = new_spec.network(ep.network).vpc
            for other in new_spec.endpoints:
                if other.kind == "scaled" and new_spec.network(other.network).vpc == vpc:
                    with contextlib.suppress(Unsupported):
                        self.dataplane.apply_endpoint(self.endpoint(other.name), [self.droplet(ep.host)])
        self._save()
        return self.endpoint(ep.name)

    def remove_endpoint(self, name: str) -> None:
        spec, st = self._spec, self._st
        ep = spec.endpoint(name)
        users = [e.name for e in spec.endpoints if name in e.backends]
        if users:
            raise LabError(f"endpoint {name} is a backend of {', '.join(users)}; remove those first")
        info = self.endpoint(name)
        if st.endpoints.get(name, {}).get("realised", True):
            self.dataplane.remove_endpoint(info, self._endpoint_hosts(ep))
        if info.netns:
            _kill_in_netns([info.netns])
            nsutil.ip_batch([f"netns del {info.netns}"], force=True)
            st.netns = [n for n in st.netns if n != info.netns]
        d = spec.to_dict()
        d["endpoints"] = [e for e in d["endpoints"] if e["name"] != name]
        self.spec = parse_spec(d)
        st.spec = d
        st.endpoints.pop(name, None)
        self._save()

    # ---- observation ------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        st = self._state
        if st is None:
            return {"state_dir": str(self.state_dir), "phase": "down"}
        present = set(nsutil.list_netns(f"{PREFIX}{st.id}-"))
        procs = [{"pid": p.pid, "role": p.role, "host": p.host, "alive": nsutil.alive(p.pid, p.starttime)}
                 for p in st.procs]
        return {
            "state_dir": str(self.state_dir), "id": st.id, "phase": st.phase, "backend": self.name,
            "dataplane": st.dataplane, "spec": st.spec.get("name"),
            "netns": {n: n in present for n in st.netns},
            "stray_netns": sorted(present - set(st.netns)),
            "processes": procs,
            "bpffs": {"path": st.bpffs, "exists": bool(st.bpffs) and Path(st.bpffs).exists()},
            "endpoints": {e["name"]: st.endpoints.get(e["name"], {}).get("realised", True)
                          for e in st.spec.get("endpoints", [])},
        }

    # ---- teardown ---------------------------------------------------------------------------
    def down(self) -> None:
        st = self._state or LabState.load(self.state_dir)
        if st is None:
            return
        self._state = st
        if st.phase != "down" and self.dataplane is not None and self.spec is not None:
            teardown = getattr(self.dataplane, "teardown_host", None)
            for info in self._droplet_infos().values():
                if teardown is not None and info.netns and nsutil.netns_exists(info.netns):
                    with contextlib.suppress(Exception):
                        teardown(info)
            with contextlib.suppress(Exception):
                self.dataplane.close()
        st.phase = "down"
        nsutil.kill_pids([(p.pid, p.starttime) for p in st.procs])
        for p in self._popens:
            with contextlib.suppress(Exception):
                p.kill()
                p.wait(timeout=2)
        self._popens.clear()
        mine = [n for n in st.netns if n.startswith(f"{PREFIX}{st.id}-")]
        _kill_in_netns(mine)
        nsutil.ip_batch([f"netns del {n}" for n in mine if nsutil.netns_exists(n)], force=True)
        left = [n for n in mine if nsutil.netns_exists(n)]
        if st.bpffs and st.bpffs.startswith(BPFFS_ROOT + "/"):
            shutil.rmtree(st.bpffs, ignore_errors=True)
        for sock in st.sockets.values():
            with contextlib.suppress(OSError):
                os.unlink(sock.removeprefix("unix:"))
        if left:
            st.save(self.state_dir)
            raise LabError(f"lab {st.id}: could not delete netns {', '.join(left)}")
        if st.bpffs and Path(st.bpffs).exists():
            st.save(self.state_dir)
            raise LabError(f"lab {st.id}: could not remove {st.bpffs}")
        LabState.remove(self.state_dir)
        self._state = None
        self.spec = None


def _kill_in_netns(names: Sequence[str]) -> None:
    pids = [(pid, nsutil.proc_starttime(pid)) for n in names for pid in nsutil.netns_pids(n)]
    pids = [(p, s) for p, s in pids if p != os.getpid()]
    nsutil.kill_pids(pids, grace=1.0)


def _ep_dict(ep: EndpointSpec) -> dict[str, Any]:
    d: dict[str, Any] = {"name": ep.name, "network": ep.network, "ip": ep.ip, "kind": ep.kind}
    if ep.host:
        d["host"] = ep.host
    if ep.backends:
        d["backends"] = list(ep.backends)
    return d
