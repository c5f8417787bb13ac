"""``xdp-live``: the BPF_PROG_RUN live-frames generator (``tg_gen_mf`` in ``xdp/trafficgen.c``)
behind the :class:`~centaurus.trafficgen.base.TrafficGen` interface.

It wraps the packet-rate pieces H4 and H5 built (:mod:`centaurus.bpf.pps`,
:mod:`centaurus.bpf.ppslab`): frames of any RFC 2544 size and several flows are redirected into
the first veth of a path from ONE thread pinned to one CPU, and counted by an XDP sink on the
last interface -- at the receiver, never by the sender's tally (a redirect into a veth whose
peer has no XDP program vanishes silently).

Paths (``run_trial(path, trial)``), set up on first use and kept until :meth:`close`:

- ``{"kind": "chain", "hops": N, "mode": "plain"}`` -- N veth hops of plain XDP_REDIRECT
  (``hops: 1`` is the raw one-hop veth rate); ``"mode": "geneve"``: the same hops with a
  fixed Geneve push/pop (the encapsulation floor);
- ``{"kind": "chain", "mode": "overlay", "via": "direct"|"bouncer"}`` -- the real overlay
  programs (agent, transit) over 3 hops (direct path) or 4 hops (via a bouncer droplet). Plain,
  floor and overlay modes of one hop count share the same veths and are attached in turn, so
  interleaved trials compare like with like;
- ``{"kind": "endpoint", "lab": lab, "src": "s1", "dst": "r1"}`` -- endpoint to endpoint
  through a lab of either dataplane (frames enter at ``src``'s eth0; a sink replaces whatever
  XDP program ``dst``'s eth0 had and puts it back on close).

Figures: ``rx_pps`` = received / generator wall time; ``extra["cpu_s"]`` is the CPU time of
the pinned generator thread, which is where every XDP hop runs (the veth transmit runs the
receiver's NAPI on the same CPU), so ``rx / cpu_s`` is what one dedicated core does even on a
shared machine. The generator is closed-loop: it cannot offer more than the path absorbs, so a
max-rate trial without loss *is* the no-drop rate.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from centaurus.trafficgen.base import GeneratorUnavailable, Trial, TrialResult
from centaurus.trafficgen.frames import udp_frame

CHAIN_MTU = 1600  # room for 1518-byte frames plus the 50/66-byte Geneve encapsulation
TG_RX_PACKETS, TG_RX_BYTES = 0, 1


class _FlowCfg(ctypes.Structure):
    _fields_ = [("flows", ctypes.c_uint32), ("sport_base", ctypes.c_uint16), ("pad", ctypes.c_uint16)]


class Sender:
    """``tg_gen_mf`` redirecting every live frame into ``ifname`` (in ``netns``)."""

    def __init__(self, netns: str | None, ifname: str) -> None:
        from centaurus.bpf.netns import ifindex, in_netns
        from centaurus.bpf.obj import BpfObject, object_path

        self.obj = BpfObject(object_path("trafficgen"))
        try:
            self.fd = self.obj.program("tg_gen_mf").fd
            port, ifi = self.obj.map("tg_port"), ifindex(ifname, netns)
            in_netns(netns, lambda: port.update(0, ifi))  # a devmap resolves ifindexes in the caller's netns
            self.flow = self.obj.map("tg_flow", value_type=_FlowCfg)
        except BaseException:
            self.obj.close()
            raise

    def set_flows(self, flows: int, sport_base: int = 40000) -> None:
        self.flow.update(0, _FlowCfg(max(1, flows), sport_base, 0))

    def send(
        self,
        frame: bytes,
        bursts: list[int],
        *,
        interval: float = 0.0,
        cpu: int | None = 0,
        batch_size: int = 64,
    ) -> tuple[float, float]:
        """Offer ``bursts`` (frames per call), one every ``interval`` s (0: back to back), from a
        thread pinned to ``cpu``; returns (thread CPU seconds, wall seconds)."""
        from centaurus.bpf.testrun import prog_test_run

        out: list[tuple[float, float]] = []
        err: list[BaseException] = []

        def body() -> None:
            try:
                if cpu is not None:
                    os.sched_setaffinity(0, {cpu})  # this thread only
                c0, t0 = time.thread_time(), time.perf_counter()
                for i, n in enumerate(bursts):
                    prog_test_run(self.fd, frame, repeat=n, live=True, batch_size=batch_size)
                    if interval:
                        delay = t0 + (i + 1) * interval - time.perf_counter()
                        if delay > 0:
                            time.sleep(delay)
                out.append((time.thread_time() - c0, time.perf_counter() - t0))
            except BaseException as exc:
                err.append(exc)

        t = threading.Thread(target=body, name="xdp-live")
        t.start()
        t.join()
        if err:
            raise err[0]
        return out[0]

    def close(self) -> None:
        self.obj.close()


class Receiver:
    """``tg_sink`` on ``ifname``: counts, then drops. The program found there before (e.g. a
    lab's XDP_PASS that keeps redirects deliverable) is put back on :meth:`close`."""

    def __init__(self, netns: str | None, ifname: str, *, restore: bool = True, udp_dport: int = 0) -> None:
        """``udp_dport``: count only IPv4/UDP frames to that port (``tg_sink_match``), for
        low-rate trials where a stray ARP or ND frame would show."""
        import socket

        from centaurus.bpf import xdp
        from centaurus.bpf.obj import BpfObject, object_path

        self.netns, self.ifname = netns, ifname
        self.saved_fd = xdp.attached_prog_fd(ifname, netns=netns) if restore else None
        self.obj = BpfObject(object_path("trafficgen"))
        self.rx = self.obj.map("tg_rx")
        prog = "tg_sink"
        if udp_dport:
            self.obj.map("tg_match").update(0, socket.htons(udp_dport))
            prog = "tg_sink_match"
        xdp.attach(ifname, self.obj.program(prog).fd, netns=netns)

    def counts(self) -> tuple[int, int]:
        return self.rx.sum_percpu(TG_RX_PACKETS), self.rx.sum_percpu(TG_RX_BYTES)

    def close(self) -> None:
        from centaurus.bpf import xdp

        with contextlib.suppress(OSError):
            if self.saved_fd is not None:
                xdp.attach(self.ifname, self.saved_fd, netns=self.netns)
            else:
                xdp.detach(self.ifname, netns=self.netns)
        if self.saved_fd is not None:
            os.close(self.saved_fd)
            self.saved_fd = None
        self.obj.close()


class Route:
    """One measurable path: how frames enter, where they are counted, how it is switched on."""

    def __init__(
        self, name: str, hops: int, sender: Sender, receiver: Receiver, frame: Callable[[int], bytes]
    ) -> None:
        self.name, self.hops, self.sender, self.receiver, self.frame = name, hops, sender, receiver, frame

    def attach(self) -> None:
        """Make this the active path (chains: swap programs on the shared veths)."""

    def counters(self) -> dict[str, dict[str, int]]:
        return {}

    def programs(self) -> list[tuple[str, int]]:
        """(host, prog fd or id) of the dataplane programs on this path, for per-host CPU."""
        return []


class _ChainSet:
    """One ``ppslab.Chain`` of N hops with its sender and sink; its modes take turns on it."""

    def __init__(self, hops: int) -> None:
        from centaurus.bpf.ppslab import Chain

        self.hops = hops
        self.chain = Chain(hops)
        self.sender: Sender | None = None
        self.receiver: Receiver | None = None
        self.modes: dict[str, Any] = {}
        self.active: str | None = None
        try:
            for i, ns in enumerate(self.chain.ns):
                # no IPv6 on the chain: neighbour discovery would add stray frames to the counts
                subprocess.run(
                    [
                        "ip",
                        "netns",
                        "exec",
                        ns,
                        "sysctl",
                        "-qw",
                        "net.ipv6.conf.all.disable_ipv6=1",
                        "net.ipv6.conf.default.disable_ipv6=1",
                    ],
                    check=False,
                )
                devs = (["out"] if i < hops else []) + (["in"] if i > 0 else [])
                cmds = "".join(f"link set {d} mtu {CHAIN_MTU}\n" for d in devs)
                subprocess.run(["ip", "-n", ns, "-b", "-"], input=cmds, text=True, check=True)
            self.sender = Sender(self.chain.ns[0], "out")
            self.receiver = Receiver(self.chain.ns[-1], "in", restore=False)
        except BaseException:
            self.close()
            raise

    def mode(self, mode: str) -> Any:
        if mode not in self.modes:
            from centaurus.bpf.ppslab import OverlayPath, PlainPath

            if mode == "overlay":
                self.modes[mode] = OverlayPath(self.chain, via_bouncer=self.hops == 4)
            else:
                self.modes[mode] = PlainPath(self.chain, geneve=mode == "geneve")
        return self.modes[mode]

    def activate(self, mode: str) -> None:
        if self.active == mode:
            return
        if self.active is not None:
            self.modes[self.active].detach()
            self.active = None
        self.mode(mode).attach()
        self.active = mode

    def close(self) -> None:
        for m in self.modes.values():
            with contextlib.suppress(Exception):
                m.close()
        self.modes.clear()
        for part in (self.receiver, self.sender):
            if part is not None:
                with contextlib.suppress(Exception):
                    part.close()
        self.chain.delete()


class _ChainRoute(Route):
    def __init__(self, cs: _ChainSet, mode: str, name: str) -> None:
        from centaurus.bpf import maps as M
        from centaurus.bpf.ppslab import A_IP, B_IP

        assert cs.sender is not None and cs.receiver is not None
        src_mac = cs.chain.mac(0, "out")
        super().__init__(
            name, cs.hops, cs.sender, cs.receiver, lambda size: udp_frame(size, src_mac, M.GW_MAC, A_IP, B_IP)
        )
        self.cs, self.mode = cs, mode
        cs.mode(mode)  # build now: set-up errors surface before the first trial

    def attach(self) -> None:
        self.cs.activate(self.mode)

    def counters(self) -> dict[str, dict[str, int]]:
        stats = getattr(self.cs.modes.get(self.mode), "stats", None)
        return stats() if stats else {}

    def programs(self) -> list[tuple[str, int]]:
        m = self.cs.modes.get(self.mode)
        out: list[tuple[str, int]] = []
        for host, ov in zip(getattr(m, "names", []), getattr(m, "ovs", []), strict=False):
            out += [(host, fd) for fd in getattr(ov, "prog_fds", {}).values()]
        for i, f in enumerate(getattr(m, "fwds", [])):
            out.append((f"hop{i + 1}", f.fd))
        return out


class _LabRoute(Route):
    """``src`` -> ``dst`` endpoints of a lab, whatever its dataplane."""

    def __init__(self, lab: Any, src: str, dst: str) -> None:
        from centaurus.bpf import maps as M
        from centaurus.bpf import xdp
        from centaurus.bpf.obj import BpfObject, object_path
        from centaurus.labs import traffic

        s, r = lab.endpoint(src), lab.endpoint(dst)
        self.lab, self.hosts = lab, [s.host, r.host]
        self.entry: tuple[Any, str | None, str] | None = None
        kernel = getattr(lab.dataplane, "name", "") == "bridge-vxlan"
        if traffic.ping(lab, src, r.ip, count=3, interval=0.05) == 0:  # ARP, FDBs, learned paths
            raise RuntimeError(f"{src} cannot reach {dst} ({r.ip}) in lab {lab.id}: nothing to measure")
        sender = receiver = None
        try:
            d_ns = lab.droplet(s.host).netns
            if xdp.query(s.veth, netns=d_ns).prog_id == 0:
                # frames redirected into src's eth0 arrive at its droplet-side veth, which needs an
                # XDP program to take them (kernel path: XDP_PASS into the bridge)
                obj = BpfObject(object_path("trafficgen"))
                xdp.attach(s.veth, obj.program("tg_pass").fd, netns=d_ns)
                self.entry = (obj, d_ns, s.veth)
            sender = Sender(s.netns, "eth0")
            receiver = Receiver(r.netns, "eth0")
        except BaseException:
            for part in (sender, receiver):
                if part is not None:
                    part.close()
            self._close_entry()
            raise
        dst_mac = r.mac if kernel else M.GW_MAC
        super().__init__(
            f"{lab.dataplane.name}:{src}->{dst}",
            3,
            sender,
            receiver,
            lambda size: udp_frame(size, s.mac, dst_mac, s.ip, r.ip),
        )

    def counters(self) -> dict[str, dict[str, int]]:
        out = {}
        for h in dict.fromkeys(self.hosts):
            with contextlib.suppress(Exception):
                out[h] = {k: v for k, v in self.lab.stats(h).items() if v}
        return out

    def _close_entry(self) -> None:
        if self.entry is not None:
            from centaurus.bpf import xdp

            obj, ns, dev = self.entry
            with contextlib.suppress(OSError):
                xdp.detach(dev, netns=ns)
            obj.close()
            self.entry = None

    def close(self) -> None:
        for part in (self.receiver, self.sender):
            with contextlib.suppress(Exception):
                part.close()
        self._close_entry()


class XdpLiveGenerator:
    """Options: ``cpu`` (CPU the generator thread is pinned to, default 0), ``batch_size``
    (frames per live-frames batch, 64), ``interval`` (pacing interval of rate-limited trials,
    0.05 s: one BPF_PROG_RUN call has a fixed set-up cost and a loaded machine wakes sleepers
    late), ``warmup`` (frames of the sizing run before a max-rate trial, 100000)."""

    name = "xdp-live"

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        o = options or {}
        self.cpu = int(o.get("cpu", 0))
        self.batch = int(o.get("batch_size", 64))
        self.interval = float(o.get("interval", 0.05))
        self.warmup = int(o.get("warmup", 100_000))
        self._chains: dict[int, _ChainSet] = {}
        self._routes: dict[tuple[Any, ...], Route] = {}

    # ---- TrafficGen ------------------------------------------------------------------------
    def check(self) -> None:
        from centaurus.bpf.obj import XDP_BUILD

        if os.geteuid() != 0:
            raise GeneratorUnavailable("xdp-live needs root (BPF_PROG_RUN, XDP attach, namespaces)")
        if not (XDP_BUILD / "trafficgen.o").exists():
            raise GeneratorUnavailable(f"{XDP_BUILD / 'trafficgen.o'} is missing: run `make -C xdp`")
        if not Path("/sys/fs/bpf").is_dir():
            raise GeneratorUnavailable("bpffs is not mounted at /sys/fs/bpf")
        if self.cpu not in os.sched_getaffinity(0):
            raise GeneratorUnavailable(f"cpu {self.cpu} is not available to this process")

    def route(self, path: dict[str, Any]) -> Route:
        """The (cached) route for a path description; see the module docstring."""
        kind = path.get("kind")
        if kind == "chain":
            mode = str(path.get("mode", "plain"))
            if mode == "overlay":
                via = str(path.get("via", "direct"))
                if via not in ("direct", "bouncer"):
                    raise ValueError(f"chain overlay path: via must be direct or bouncer, not {via!r}")
                hops = 3 if via == "direct" else 4
                name = f"overlay_{via}_{hops}hop"
            elif mode in ("plain", "geneve"):
                hops = int(path.get("hops", 1))
                if not 1 <= hops <= 8 or (mode == "geneve" and hops < 3):
                    raise ValueError(f"chain {mode}: hops must be 1..8 (geneve: >= 3), not {hops}")
                name = f"{mode}_{hops}hop" if mode == "plain" else f"geneve_floor_{hops}hop"
            else:
                raise ValueError(f"chain mode must be plain, geneve or overlay, not {mode!r}")
            key: tuple[Any, ...] = ("chain", hops, mode)
            if key not in self._routes:
                if hops not in self._chains:
                    self._chains[hops] = _ChainSet(hops)
                self._routes[key] = _ChainRoute(self._chains[hops], mode, name)
            return self._routes[key]
        if kind == "endpoint":
            lab = path.get("lab")
            if lab is None:
                raise ValueError("endpoint path needs a lab")
            key = ("endpoint", id(lab), path.get("src"), path.get("dst"))
            if key not in self._routes:
                self._routes[key] = _LabRoute(lab, str(path["src"]), str(path["dst"]))
            return self._routes[key]
        raise ValueError(f"xdp-live: unknown path kind {kind!r} (chain | endpoint)")

    def run_trial(self, path: dict[str, Any], trial: Trial) -> TrialResult:
        r = self.route(path)
        frame = r.frame(trial.frame_size)
        r.sender.set_flows(trial.flows)
        r.attach()
        send = r.sender.send
        if trial.rate_pps <= 0:
            p0, _ = r.receiver.counts()
            _, wall = send(frame, [self.warmup], cpu=self.cpu, batch_size=self.batch)
            time.sleep(0.01)
            rate = max(r.receiver.counts()[0] - p0, self.warmup // 100) / max(wall, 1e-6)
            bursts = [max(10_000, min(int(rate * trial.duration_s), 100_000_000))]
            interval = 0.0
        else:
            burst = max(1, round(trial.rate_pps * self.interval))
            bursts = [burst] * max(1, round(trial.duration_s / self.interval))
            interval = self.interval
        p0, b0 = r.receiver.counts()
        cpu_s, wall = send(frame, bursts, interval=interval, cpu=self.cpu, batch_size=self.batch)
        time.sleep(0.02)  # the last NAPI polls finish: they count, the clock stopped
        p1, b1 = r.receiver.counts()
        tx, rx = sum(bursts), p1 - p0
        return TrialResult(
            tx,
            rx,
            wall,
            extra={
                "path": r.name,
                "hops": r.hops,
                "frame_size": trial.frame_size,
                "flows": trial.flows,
                "offered_pps": trial.rate_pps,
                "sent_pps": tx / wall if wall else 0.0,
                "cpu_s": cpu_s,
                "rx_bytes": b1 - b0,
                "pps_per_core": rx / cpu_s if cpu_s > 0 else 0.0,
                "generator": self.name,
            },
        )

    def close(self) -> None:
        """Remove every namespace, program and sink this generator set up (idempotent)."""
        for key, r in list(self._routes.items()):
            if key[0] == "endpoint" and isinstance(r, _LabRoute):
                r.close()
        self._routes.clear()
        for cs in self._chains.values():
            cs.close()
        self._chains.clear()
