"""Labs on machines this process does not own: every droplet is a host (a server, a VM).

An *inventory* (YAML) says how to reach each droplet of the spec and which interface carries its
substrate address; a *transport* turns a command into one that runs on that host (``ssh``, or
``nsenter`` into a namespace standing in for a host, which is how this backend is verified on a
single machine). Before anything is created every host is checked with testinfra (tools, kernel,
bpffs, the substrate address on the named interface, the Python that runs transitd); all failures
are reported together in one line.

On each host the lab creates, all named with the lab id: one netns per endpoint
(``cl-<id>-<ep>``) with a veth whose host side is ``v<id><ep>``; for mizar-xdp a transitd
serving gRPC on ``<address>:<transitd_port>`` (and a socket under /run/centaurus/<id>/), pins under
``/sys/fs/bpf/centaurus/<id>/<droplet>``. The state file records hosts, namespaces and daemon pids
before/after each step; ``down`` removes all of it host by host, also from a fresh process.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
import shlex
import subprocess
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import yaml

from centaurus import BPFFS_ROOT, PREFIX, plugins
from centaurus.dataplane.base import DataplaneError, DropletInfo
from centaurus.labs import nsutil, topology
from centaurus.labs.base import Host, LabError
from centaurus.labs.spec import LabSpec
from centaurus.labs.speclab import SpecLab
from centaurus.labs.state import LabState, ProcRecord, resolve_state_dir

MIN_KERNEL = (5, 10)  # native XDP on veth, BPF_PROG_RUN live frames came later but are not needed here


@dataclass
class RemoteHost:
    name: str  # droplet name
    address: str  # management address: ssh and transitd's gRPC
    iface: str = "eth1"  # substrate interface (holds the spec's droplet IP)
    user: str = "root"
    port: int = 22
    key: str = ""
    ssh_config: str = ""
    ssh_host: str = ""  # host alias in ssh_config (vagrant); default: address
    python: str = "python3"  # the interpreter that has the centaurus package
    transitd_port: int = 50151
    netns: str = ""  # netns transport only: the namespace standing in for this host


def load_inventory(path: str | Path) -> dict[str, RemoteHost]:
    """``hosts: {d1: {address, iface, user, port, key, python, transitd_port}}`` (+ ``defaults``)."""
    p = Path(path).expanduser()
    try:
        doc = yaml.safe_load(p.read_text())
    except OSError as exc:
        raise LabError(f"{p}: cannot read inventory: {exc.strerror}") from None
    except yaml.YAMLError:
        raise LabError(f"{p}: inventory is not valid YAML") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("hosts"), dict):
        raise LabError(f"{p}: inventory needs a 'hosts' mapping of droplet name -> settings")
    defaults = doc.get("defaults") or {}
    fields = set(RemoteHost.__dataclass_fields__) - {"name"}
    out: dict[str, RemoteHost] = {}
    for name, cfg in doc["hosts"].items():
        merged = {**defaults, **(cfg or {})}
        unknown = sorted(set(merged) - fields)
        if unknown:
            raise LabError(f"{p}: hosts.{name}: unknown key {unknown[0]!r} "
                           f"(allowed: {', '.join(sorted(fields))})")
        if "address" not in merged:
            raise LabError(f"{p}: hosts.{name}: missing 'address'")
        try:
            out[str(name)] = RemoteHost(name=str(name), **merged)
        except TypeError as exc:
            raise LabError(f"{p}: hosts.{name}: {exc}") from None
    return out


# ---- transports --------------------------------------------------------------------------------
class Transport(Protocol):
    name: str

    def argv(self, h: RemoteHost, argv: Sequence[str]) -> list[str]:
        """A local command line that runs ``argv`` on host ``h`` as root."""

    def infra(self, h: RemoteHost) -> Any:
        """A testinfra ``Host`` for ``h``."""


class SshTransport:
    name = "ssh"

    def argv(self, h: RemoteHost, argv: Sequence[str]) -> list[str]:
        cmd = shlex.join(argv)
        if h.user != "root":
            cmd = "sudo -n " + cmd
        out = ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
               "-o", "StrictHostKeyChecking=accept-new", "-p", str(h.port)]
        if h.key:
            out += ["-i", str(Path(h.key).expanduser())]
        if h.ssh_config:
            out += ["-F", h.ssh_config]
        return [*out, f"{h.user}@{h.ssh_host or h.address}", cmd]

    def infra(self, h: RemoteHost) -> Any:
        import testinfra

        kw: dict[str, Any] = {"sudo": h.user != "root"}
        if h.key:
            kw["ssh_identity_file"] = str(Path(h.key).expanduser())
        if h.ssh_config:
            kw["ssh_config"] = h.ssh_config
        return testinfra.get_host(f"ssh://{h.user}@{h.ssh_host or h.address}:{h.port}", **kw)


class NetnsTransport:
    """Each host is a network namespace on this machine (shared filesystem and bpffs): enough to
    run every step of this backend for real, except the ssh hop itself."""

    name = "netns"

    def argv(self, h: RemoteHost, argv: Sequence[str]) -> list[str]:
        if not h.netns:
            raise LabError(f"inventory host {h.name} has no 'netns' (needed by the netns transport)")
        return nsutil.nsenter_argv(h.netns, argv)

    def infra(self, h: RemoteHost) -> Any:
        from testinfra.backend.local import LocalBackend
        from testinfra.host import Host as InfraHost

        path = str(nsutil.netns_path(h.netns))

        class NetnsBackend(LocalBackend):  # type: ignore[misc]
            def run(self, command: str, *args: str, **kwargs: Any) -> Any:
                inner = self.get_command(command, *args)
                return self.run_local("nsenter --net=%s -- /bin/sh -c %s", path, inner)

        return InfraHost(NetnsBackend())


TRANSPORTS: dict[str, type[SshTransport] | type[NetnsTransport]] = {
    "ssh": SshTransport, "netns": NetnsTransport}


def remote_veth(lab_id: str, ep: str) -> str:
    """Host-side veth of an endpoint: unique per lab on a shared host, <= 15 characters."""
    name = f"v{lab_id}{ep}"
    if len(name) <= 15:
        return name
    return f"v{lab_id}" + hashlib.sha1(ep.encode()).hexdigest()[:14 - len(lab_id)]


def check_host(infra: Any, h: RemoteHost, ip: str, need_python: bool) -> list[str]:
    """What must hold on a droplet host before the lab touches it (testinfra)."""
    bad: list[str] = []
    for tool in ("ip", "nsenter", "bridge", "sysctl"):
        if not infra.exists(tool):
            bad.append(f"{h.name}: '{tool}' not installed")
    rel = infra.check_output("uname -r")
    nums = tuple(int(x) for x in rel.split("-")[0].split(".")[:2] if x.isdigit())
    if nums < MIN_KERNEL:
        bad.append(f"{h.name}: kernel {rel} older than {'.'.join(map(str, MIN_KERNEL))}")
    if not infra.mount_point("/sys/fs/bpf").exists:
        bad.append(f"{h.name}: bpffs not mounted on /sys/fs/bpf")
    link = infra.run("ip -j addr show dev %s", h.iface)
    if link.rc != 0:
        bad.append(f"{h.name}: no substrate interface {h.iface}")
    else:
        info = json.loads(link.stdout or "[]")
        addrs = [a.get("local") for i in info for a in i.get("addr_info", [])]
        if ip not in addrs:
            bad.append(f"{h.name}: {h.iface} does not carry the spec's address {ip} (has {addrs})")
    if need_python and infra.run("%s -c 'import centaurus.transitd.daemon'", h.python).rc != 0:
        bad.append(f"{h.name}: {h.python} cannot import centaurus (deploy the package there)")
    return bad


class RemoteLab(SpecLab):
    """The lab handle (CONTRACTS.md) over hosts reached through a transport."""

    name = "remote"
    transport_name = "ssh"

    def __init__(self, state_dir: Path, options: dict[str, str] | None = None) -> None:
        self.state_dir = resolve_state_dir(Path(state_dir)).absolute()
        self.options = dict(options or {})
        self.spec = None
        self.dataplane = None
        self._state = LabState.load(self.state_dir)
        self.inventory: dict[str, RemoteHost] = {}
        if self._state is not None and self._state.phase in ("up", "creating"):
            self.inventory = {n: RemoteHost(**h) for n, h in self._state.remote.get("hosts", {}).items()}
            self.transport = TRANSPORTS[self._state.remote.get("transport", "ssh")]()
            self._attach()
        else:
            self.transport = TRANSPORTS[self.options.get("transport", self.transport_name)]()

    # ---- running commands on hosts ------------------------------------------------------------
    def _sh(self, host: str, script: str, check: bool = True, timeout: float = 60.0) -> str:
        h = self.inventory[host]
        cp = subprocess.run(self.transport.argv(h, ["sh", "-c", script]), capture_output=True, text=True,
                            timeout=timeout, stdin=subprocess.DEVNULL)
        if check and cp.returncode != 0:
            first = (cp.stderr.strip().splitlines() or [f"exit {cp.returncode}"])[0]
            raise LabError(f"{self.transport.name} {host}: {first}")
        return cp.stdout

    def _exec(self, droplet: DropletInfo, argv: Sequence[str], input: str | None = None) -> str:
        """The dataplane's exec hook (bridge-vxlan) on a remote host."""
        cp = subprocess.run(self.transport.argv(self.inventory[droplet.name], list(argv)), input=input,
                            capture_output=True, text=True, timeout=60)
        if cp.returncode != 0:
            first = (cp.stderr.strip().splitlines() or ["failed"])[0]
            raise DataplaneError(f"{argv[0]} on {droplet.name}: {first}")
        return cp.stdout

    # ---- bring-up ------------------------------------------------------------------------------
    def load_inventory(self) -> dict[str, RemoteHost]:
        path = self.options.get("inventory")
        if not path:
            raise LabError(f"lab backend {self.name!r} needs an inventory: --lab {self.name},inventory=PATH")
        return load_inventory(path)

    def up(self, spec: LabSpec) -> None:
        if self._state is not None and self._state.phase in ("up", "creating"):
            raise LabError(f"a lab (id {self._state.id}) is already up in {self.state_dir}")
        self.inventory = self.load_inventory()
        missing = [d.name for d in spec.droplets if d.name not in self.inventory]
        if missing:
            raise LabError(f"inventory has no host for droplet(s) {', '.join(missing)}")
        dp_name = self.options.get("dataplane") or spec.dataplane
        lab_id = self.options.get("id") or secrets.token_hex(2)
        dp_opts = {k: v for k, v in self.options.items()
                   if k not in ("dataplane", "id", "inventory", "transport")}
        dp_opts.update(lab_id=lab_id, state_dir=str(self.state_dir))
        dp_cls = plugins.load("dataplane", dp_name)
        self._check_hosts(spec, need_python=dp_name == "mizar-xdp")
        self.spec = spec
        veths = {e.name: remote_veth(lab_id, e.name) for e in spec.endpoints if e.kind == "simple"}
        self._state = LabState(id=lab_id, backend=self.name, dataplane=dp_name, spec=spec.to_dict(),
                               options=dp_opts, bpffs=f"{BPFFS_ROOT}/{lab_id}",
                               netns=[topology.netns_name(lab_id, e) for e in veths],
                               remote={"transport": self.transport.name, "veths": veths, "macs": {},
                                       "hosts": {n: asdict(h) for n, h in self.inventory.items()}})
        self._save()
        try:
            self.dataplane = dp_cls(options=dp_opts)
            if hasattr(self.dataplane, "exec"):
                self.dataplane.exec = self._exec
            self._read_macs()
            for d in spec.droplets:
                self._create_endpoints(d.name, [e.name for e in spec.endpoints_on(d.name)])
            self._start_daemons()
            self._program()
            self._state.phase = "up"
            self._save()
        except BaseException:
            with contextlib.suppress(Exception):
                self.down()
            raise

    def _check_hosts(self, spec: LabSpec, need_python: bool) -> None:
        def one(d: Any) -> list[str]:
            h = self.inventory[d.name]
            try:
                return check_host(self.transport.infra(h), h, d.ip, need_python)
            except Exception as exc:  # unreachable host, ssh refused, ...
                return [f"{d.name}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"]

        with ThreadPoolExecutor(max_workers=min(8, len(spec.droplets))) as pool:
            problems = [p for res in pool.map(one, spec.droplets) for p in res]
        if problems:
            raise LabError("host checks failed: " + "; ".join(problems))

    def _read_macs(self) -> None:
        st = self._st
        for name, h in self.inventory.items():
            if self.spec is not None and name in {d.name for d in self.spec.droplets}:
                doc = json.loads(self._sh(name, f"ip -j link show dev {shlex.quote(h.iface)}"))
                st.remote["macs"][name] = doc[0]["address"]
        self._save()

    def _create_endpoints(self, host: str, names: list[str]) -> None:
        if not names:
            return
        spec, st = self._spec, self._st
        lines, per_ns = [], []
        for name in names:
            ep, ns, veth = spec.endpoint(name), topology.netns_name(st.id, name), st.remote["veths"][name]
            net = spec.network(ep.network)
            lines += [f"ip netns add {ns}",
                      f"ip link add name eth0 netns {ns} address {topology.mac_for(st.id, 'endpoint', name)} "
                      f"mtu {topology.ENDPOINT_MTU} type veth peer name {veth} mtu {topology.ENDPOINT_MTU}",
                      f"ip link set {veth} up"]
            per_ns += [f"ip -n {ns} link set lo up", f"ip -n {ns} addr add {ep.ip}/{net.prefixlen} dev eth0",
                       f"ip -n {ns} link set eth0 up",
                       f"ip -n {ns} route add default via {net.gateway} dev eth0"]
        script = "set -e\n" + "\n".join(lines + per_ns) + "\n"
        if getattr(self.dataplane, "needs_xdp_peers", False):
            py = shlex.quote(self.inventory[host].python)
            script += "".join(f"{py} -m centaurus.labs.xdppeers {topology.netns_name(st.id, n)} eth0\n"
                              for n in names)
        self._sh(host, script)

    def _droplet_infos(self) -> dict[str, DropletInfo]:
        st = self._st
        macs = st.remote.get("macs", {})
        out: dict[str, DropletInfo] = {}
        for d in self._spec.droplets:
            h = self.inventory[d.name]
            addr = f"{h.address}:{h.transitd_port}" if st.dataplane == "mizar-xdp" else ""
            out[d.name] = DropletInfo(name=d.name, netns=None, ip=d.ip, mac=macs.get(d.name, ""),
                                      ifname=h.iface, transitd=addr)
        return out

    def _ep_veth(self, name: str) -> str:
        return str(self._st.remote.get("veths", {}).get(name) or remote_veth(self._st.id, name))

    def _start_daemons(self) -> None:
        st, dp = self._st, self.dataplane
        infos = self._droplet_infos()
        started: list[DropletInfo] = []
        for name, info in infos.items():
            argv = dp.daemon_argv(info)
            if not argv:
                continue
            h = self.inventory[name]
            argv[0] = h.python
            log = f"/run/centaurus/{st.id}/transitd-{name}.log"
            script = (f"mkdir -p /run/centaurus/{st.id} && nohup {shlex.join(argv)} > {log} 2>&1 < /dev/null "
                      "& echo $!")
            pid = int(self._sh(name, script).strip().splitlines()[-1])
            st.procs.append(ProcRecord(pid, None, "transitd", name))
            self._save()
            started.append(info)
        for info in started:
            try:
                dp.wait_ready(info, timeout=30.0)
            except DataplaneError as exc:
                log = f"/run/centaurus/{st.id}/transitd-{info.name}.log"
                tail = self._sh(info.name, f"tail -n 3 {log}", check=False)
                raise LabError(f"{exc} -- {tail.strip()[-300:]}") from None

    # ---- the lab handle --------------------------------------------------------------------------
    def hosts(self, role: str | None = None) -> list[Host]:
        spec, st = self._spec, self._st
        out = [Host(d.name, "droplet", address=d.ip, zone=d.zone or None,
                    labels={"management": self.inventory[d.name].address}) for d in spec.droplets]
        out += [Host(e.name, "endpoint", address=e.ip, netns=topology.netns_name(st.id, e.name),
                     labels={"network": e.network, "host": e.host})
                for e in spec.endpoints if e.kind == "simple"]
        return [h for h in out if role is None or h.role == role]

    def _argv(self, host: str, argv: Sequence[str]) -> list[str]:
        spec = self._spec
        if host in self.inventory and host in {d.name for d in spec.droplets}:
            return self.transport.argv(self.inventory[host], argv)
        for e in spec.endpoints:
            if e.name == host and e.kind == "simple":
                ns = topology.netns_name(self._st.id, host)
                return self.transport.argv(self.inventory[e.host], nsutil.nsenter_argv(ns, argv))
        raise LabError(f"lab {self._st.id} has no host named {host!r}")

    def run(self, host: str, argv: Sequence[str], *, timeout: float = 30.0, check: bool = True,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self._argv(host, argv), capture_output=True, text=True, timeout=timeout,
                              check=check, input=input,
                              stdin=None if input is not None else subprocess.DEVNULL)

    def popen(self, host: str, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        p: subprocess.Popen[bytes] = subprocess.Popen(self._argv(host, argv), **kwargs)
        return p

    def add_endpoint(self, spec_dict: dict[str, Any]) -> Any:
        raise LabError(f"lab backend {self.name!r} realises the spec's endpoints only (no run-time add)")

    def remove_endpoint(self, name: str) -> None:
        raise LabError(f"lab backend {self.name!r} realises the spec's endpoints only (no run-time remove)")

    def status(self) -> dict[str, Any]:
        st = self._state
        if st is None:
            return {"state_dir": str(self.state_dir), "phase": "down"}
        per_host: dict[str, Any] = {}
        for name in self.inventory:
            try:
                present = self._sh(name, f"ip netns list | cut -d' ' -f1 | grep '^{PREFIX}{st.id}-' || true",
                                   timeout=20).split()
                pids = [p.pid for p in st.procs if p.host == name]
                alive = {p: self._sh(name, f"kill -0 {p} 2>/dev/null && echo y || echo n",
                                     timeout=20).strip() == "y" for p in pids}
                per_host[name] = {"netns": present, "daemons": alive, "reachable": True}
            except (LabError, subprocess.TimeoutExpired) as exc:
                per_host[name] = {"reachable": False, "error": str(exc)}
        return {"state_dir": str(self.state_dir), "id": st.id, "phase": st.phase, "backend": self.name,
                "transport": st.remote.get("transport"), "dataplane": st.dataplane,
                "spec": st.spec.get("name"),
                "netns": {n: any(n in h.get("netns", []) for h in per_host.values()) for n in st.netns},
                "processes": [{"pid": p.pid, "role": p.role, "host": p.host,
                               "alive": per_host.get(p.host, {}).get("daemons", {}).get(p.pid, False)}
                              for p in st.procs],
                "hosts": per_host, "bpffs": {"path": st.bpffs, "exists": None}}

    def down(self) -> None:
        st = self._state or LabState.load(self.state_dir)
        if st is None:
            return
        self._state = st
        if not self.inventory:
            self.inventory = {n: RemoteHost(**h) for n, h in st.remote.get("hosts", {}).items()}
        if self.dataplane is not None and self.spec is not None and st.phase != "down":
            for info in self._droplet_infos().values():
                with contextlib.suppress(Exception):
                    self.dataplane.teardown_host(info)
            with contextlib.suppress(Exception):
                self.dataplane.close()
        st.phase = "down"
        ours = f"{PREFIX}{st.id}-"
        failed: list[str] = []
        vnis = [int(v["vni"]) for v in st.spec.get("vpcs", [])]
        kernel_path = "".join(f"ip link del vx{v} 2>/dev/null; ip link del bv{v} 2>/dev/null; "
                              f"ip rule del iif bv{v} 2>/dev/null; ip route flush table {0x10000000 + v} "
                              "2>/dev/null; " for v in vnis) if st.dataplane == "bridge-vxlan" else ""
        spec_eps = {e["name"]: e.get("host") for e in st.spec.get("endpoints", [])}
        for name, h in self.inventory.items():
            pids = " ".join(str(p.pid) for p in st.procs if p.host == name)
            iface = shlex.quote(h.iface)
            # veths go with their namespace, but asynchronously: delete ours now, deterministically
            veths = " ".join(v for ep, v in st.remote.get("veths", {}).items() if spec_eps.get(ep) == name)
            script = (
                f"for p in {pids}; do kill -TERM $p 2>/dev/null; done; sleep 0.3; "
                f"for p in {pids}; do kill -KILL $p 2>/dev/null; done; "
                # a transitd that died cannot detach: never leave our program on the host's NIC
                f"ip -d link show dev {iface} 2>/dev/null | grep -q 'name cl_transit' && "
                f"ip link set dev {iface} xdp off; {kernel_path}"
                f"for v in {veths}; do ip link del $v 2>/dev/null; done; "
                f"for n in $(ip netns list | cut -d' ' -f1 | grep '^{ours}'); do "
                f"  for p in $(ip netns pids $n); do kill -KILL $p; done; ip netns del $n; done; "
                f"rm -rf {shlex.quote(st.bpffs)} /run/centaurus/{st.id}; "
                f"ip netns list | cut -d' ' -f1 | grep -c '^{ours}' || true")
            try:
                left = self._sh(name, script, check=False, timeout=60).strip().splitlines()
                if left and left[-1].strip() not in ("", "0"):
                    failed.append(f"{name}: {left[-1]} namespaces left")
            except (LabError, subprocess.TimeoutExpired) as exc:
                failed.append(f"{name}: {exc}")
        if failed:
            st.save(self.state_dir)
            raise LabError(f"lab {st.id}: teardown incomplete ({'; '.join(failed)}); run down again")
        LabState.remove(self.state_dir)
        self._state = None
        self.spec = None

    def _attach(self) -> None:
        super()._attach()
        if self.dataplane is not None and hasattr(self.dataplane, "exec"):
            self.dataplane.exec = self._exec


__all__ = ["NetnsTransport", "RemoteHost", "RemoteLab", "SshTransport", "load_inventory"]
