"""Same-run packet-rate comparison in throwaway namespaces: plain XDP_REDIRECT chains against
the overlay over the same veth hops.

A chain of namespaces N0 .. Nk joined by veth pairs (``out`` in Ni <-> ``in`` in Ni+1): the
generator sends into N0's ``out``, every ``in`` is one XDP hop, the receiver counts on Nk's
``in``. Shapes (k = hops):

- 1 hop: generator -> sink (the raw veth rate)
- 3 hops, direct path: endpoint A | droplet d1 (agent: encap straight to d2, learned path) |
  droplet d2 (transit: decap, redirect to B) | endpoint B (sink)
- 4 hops, via a bouncer: A | d1 (agent: encap to the bouncer) | d3 (transit: bouncer) |
  d2 (transit: decap) | B

Each shape is first measured with plain ``tg_forward`` hops, then the same veths carry the
overlay programs. Everything is removed afterwards (namespaces, pins), also on errors.
``python -m centaurus.bpf.ppslab`` prints the table (``--json`` for machines).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import secrets
import socket
import statistics
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import centaurus
from centaurus.bpf import maps as M
from centaurus.bpf.netns import in_netns, mac_address
from centaurus.bpf.overlay import Overlay, remove_pins
from centaurus.bpf.pps import Forwarder, LiveGenerator, RateResult, Sink, trial

VNI = 1001
VPC_CIDR, NET_CIDR = "10.10.0.0/16", "10.10.1.0/24"
A_IP, B_IP = "10.10.1.10", "10.10.1.11"


def frame64(src_mac: str, dst_mac: str = M.GW_MAC, src: str = A_IP, dst: str = B_IP) -> bytes:
    """A 64-byte frame on the wire (60 + FCS): Ethernet / IPv4 / UDP / zero payload."""
    import struct

    payload = b"\0" * (60 - 14 - 20 - 8)
    udp = struct.pack("!HHHH", 40000, 9, 8 + len(payload), 0)
    ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp) + len(payload), 0, 0, 64, 17, 0,
                               socket.inet_aton(src), socket.inet_aton(dst)))
    s = sum(struct.unpack("!10H", bytes(ip)))
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    ip[10:12] = struct.pack("!H", ~s & 0xFFFF)
    return M.mac_bytes(dst_mac) + M.mac_bytes(src_mac) + b"\x08\x00" + bytes(ip) + udp + payload


def geneve_header() -> bytes:
    """A well-formed 66-byte outer header (the floor path never looks at it)."""
    from scapy.contrib.geneve import GENEVE, GeneveOptions
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether

    opt = GeneveOptions(classid=M.OPT_CLASS, type=M.OPT_TYPE_RTS, length=3, data=b"\0" * 12)
    pkt = (Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src=droplet_ip(1), dst=droplet_ip(2))
           / UDP(sport=M.SPORT_BASE, dport=M.GENEVE_PORT, chksum=0) / GENEVE(proto=M.ETH_P_TEB, vni=VNI,
                                                                             options=[opt]))
    raw = bytes(pkt)
    assert len(raw) == M.ENCAP_LEN
    return raw


@dataclass
class Chain:
    """Namespaces N0..Nk joined by veths; created on construction, removed by :meth:`delete`."""

    hops: int
    tag: str = field(default_factory=lambda: secrets.token_hex(2))
    ns: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.ns = [f"{centaurus.PREFIX}pp{self.tag}-{i}" for i in range(self.hops + 1)]
        try:
            for n in self.ns:
                subprocess.run(["ip", "netns", "add", n], check=True)
            for i in range(self.hops):
                subprocess.run(["ip", "-n", self.ns[i], "link", "add", "out", "type", "veth", "peer",
                                "name", "in", "netns", self.ns[i + 1]], check=True)
            for i, n in enumerate(self.ns):
                devs = (["out"] if i < self.hops else []) + (["in"] if i > 0 else [])
                cmds = "".join(f"link set {d} up\n" for d in devs) + "link set lo up\n"
                subprocess.run(["ip", "-n", n, "-b", "-"], input=cmds, text=True, check=True)
        except BaseException:
            self.delete()
            raise

    def mac(self, i: int, dev: str) -> str:
        return mac_address(dev, self.ns[i])

    def ifindex(self, i: int, dev: str) -> int:
        return in_netns(self.ns[i], lambda: socket.if_nametoindex(dev))

    def delete(self) -> None:
        for n in self.ns:
            subprocess.run(["ip", "netns", "del", n], check=False, stderr=subprocess.DEVNULL)


class PlainPath:
    """``tg_forward`` on every intermediate ``in`` (redirect to the same namespace's ``out``).
    ``geneve=True``: the first hop pushes a fixed Geneve header and the last pops it -- the
    floor of encapsulation alone over the same hops (NOTES: "3 hops with Geneve push/pop")."""

    def __init__(self, chain: Chain, *, geneve: bool = False) -> None:
        self.fwds: list[Forwarder] = []
        try:
            for i in range(1, chain.hops):
                mode = "forward"
                if geneve and i == 1:
                    mode = "push"
                elif geneve and i == chain.hops - 1:
                    mode = "pop"
                self.fwds.append(Forwarder(chain.ns[i], {"in": "out"}, attach=False, mode=mode,
                                           header=geneve_header()))
        except BaseException:
            self.close()
            raise

    def attach(self) -> None:
        for f in self.fwds:
            f.attach()

    def detach(self) -> None:
        for f in self.fwds:
            f.detach()

    def close(self) -> None:
        for f in self.fwds:
            f.close()
        self.fwds = []

    def stats(self) -> dict[str, dict[str, int]]:
        return {}


def droplet_ip(i: int) -> str:
    return f"10.199.0.{10 + i}"


class OverlayPath:
    """N1 = d1 (A's droplet: agent), N(k-1) = d2 (B's droplet: transit decap), droplets
    between them bounce (transit). Direct path: d1's host cache pre-warmed toward d2, as the
    dataplane itself learns it after the first bounced frames (tests/xdp/test_direct_path)."""

    def __init__(self, chain: Chain, *, via_bouncer: bool) -> None:
        k = self.k = chain.hops
        self.chain = chain
        self.pin_root = Path(centaurus.BPFFS_ROOT) / f"{centaurus.PREFIX}pp{chain.tag}"
        self.ovs: list[Overlay] = []
        self.names: list[str] = []
        try:
            self._program(k, via_bouncer)
        except BaseException:
            self.close()
            raise

    def _program(self, k: int, via_bouncer: bool) -> None:
        chain = self.chain
        for i in range(1, k):
            self.ovs.append(Overlay.load(self.pin_root / f"d{i}", netns=chain.ns[i]))
            self.names.append("d1" if i == 1 else "d2" if i == k - 1 else f"bouncer{i - 1}")
        a_mac, b_mac = chain.mac(0, "out"), chain.mac(k, "in")
        last = k - 1
        bouncer = droplet_ip(2) if via_bouncer else droplet_ip(last)
        for ov, i in zip(self.ovs, range(1, k), strict=True):
            up = "in" if i > 1 else "out"  # d1's substrate port is "out"; the others' is "in"
            ov.set_config(droplet_ip(i), chain.mac(i, up), chain.ifindex(i, up))
            ov.put_vpc(VNI, VPC_CIDR)
            is_bouncer = via_bouncer and droplet_ip(i) == bouncer
            ov.put_network(VNI, NET_CIDR, bouncers=[bouncer], net_id=1, bouncer_here=is_bouncer)
            if i < last:  # the next droplet is behind "out"
                ov.put_neigh(droplet_ip(i + 1), chain.mac(i + 1, "in"), chain.ifindex(i, "out"))
            if is_bouncer:
                ov.put_endpoint(VNI, B_IP, host_ip=droplet_ip(last), mac=b_mac, vpc_cidr=VPC_CIDR, net_id=1)
        d1, d2 = self.ovs[0], self.ovs[-1]
        d1.put_endpoint(VNI, A_IP, host_ip=droplet_ip(1), mac=a_mac, vpc_cidr=VPC_CIDR,
                        ifindex=chain.ifindex(1, "in"), net_id=1)
        d1.put_iface(chain.ifindex(1, "in"), vni=VNI, ip=A_IP, mac=a_mac, net_cidr=NET_CIDR, net_id=1)
        d2.put_endpoint(VNI, B_IP, host_ip=droplet_ip(last), mac=b_mac, vpc_cidr=VPC_CIDR,
                        ifindex=chain.ifindex(last, "out"), net_id=1)
        if not via_bouncer:
            d1.learn(VNI, B_IP, droplet_ip(last), chain.mac(last, "in"),
                     ifindex=chain.ifindex(1, "out"), ttl_ns=3600 * 10**9)

    def attach(self) -> None:
        self.ovs[0].attach_agent("in")
        for ov in self.ovs[1:]:
            ov.attach_transit("in")

    def detach(self) -> None:
        for ov in self.ovs:
            with contextlib.suppress(Exception):
                ov.detach("in")

    def close(self) -> None:
        self.detach()
        for ov in self.ovs:
            ov.destroy()
        self.ovs = []
        remove_pins(self.pin_root)

    def stats(self) -> dict[str, dict[str, int]]:
        return {n: {k: v for k, v in ov.stats().items() if v}
                for n, ov in zip(self.names, self.ovs, strict=True)}


Path_ = PlainPath | OverlayPath


@contextlib.contextmanager
def plain_chain(chain: Chain, *, geneve: bool = False) -> Iterator[Sink]:
    """A plain chain attached, with a counting sink on the last hop (used by labs/pps.py)."""
    sink = Sink(chain.ns[-1], "in")
    path: PlainPath | None = None
    try:
        path = PlainPath(chain, geneve=geneve)
        path.attach()
        yield sink
    finally:
        if path is not None:
            path.close()
        sink.close()


@contextlib.contextmanager
def overlay_chain(chain: Chain, *, via_bouncer: bool) -> Iterator[tuple[Sink, list[Overlay]]]:
    """The overlay programmed and attached over the chain, with a counting sink."""
    sink = Sink(chain.ns[-1], "in")
    path: OverlayPath | None = None
    try:
        path = OverlayPath(chain, via_bouncer=via_bouncer)
        path.attach()
        yield sink, path.ovs
    finally:
        if path is not None:
            path.close()
        sink.close()


def campaign(seconds: float = 1.0, trials: int = 3, cpu: int | None = 0) -> dict[str, Any]:
    """Plain 1/3/4-hop chains and the overlay over the 3- and 4-hop shapes, same run. Plain
    and overlay trials alternate on the same veths, so load from elsewhere hits both alike."""
    results: dict[str, RateResult] = {}
    counters: dict[str, dict[str, dict[str, int]]] = {}
    for hops in (1, 3, 4):
        chain = Chain(hops)
        gen: LiveGenerator | None = None
        sink: Sink | None = None
        paths: dict[str, Path_] = {}
        try:
            gen = LiveGenerator(chain.ns[0], "out")
            sink = Sink(chain.ns[-1], "in")
            frame = frame64(chain.mac(0, "out"))
            paths[f"plain_{hops}hop"] = PlainPath(chain)
            if hops == 3:
                paths["geneve_floor_3hop"] = PlainPath(chain, geneve=True)
                paths["overlay_direct_3hop"] = OverlayPath(chain, via_bouncer=False)
            elif hops == 4:
                paths["geneve_floor_4hop"] = PlainPath(chain, geneve=True)
                paths["overlay_bouncer_4hop"] = OverlayPath(chain, via_bouncer=True)
            for name in paths:
                results[name] = RateResult(name, hops)
            for _ in range(trials):
                for name, p in paths.items():
                    p.attach()
                    try:
                        trial(results[name], gen, sink.packets, frame, seconds=seconds, cpu=cpu)
                    finally:
                        p.detach()
            for name, p in paths.items():
                if isinstance(p, OverlayPath):
                    counters[name] = p.stats()
        finally:
            for p in paths.values():
                p.close()
            if sink:
                sink.close()
            if gen:
                gen.close()
            chain.delete()
    out: dict[str, Any] = {"paths": {k: v.as_dict() for k, v in results.items()}, "counters": counters}
    out.update(ratios(results))
    return out


def ratios(results: dict[str, RateResult]) -> dict[str, dict[str, float]]:
    """Overlay (and Geneve floor) against the plain chain of the same hops, three ways: median
    of the per-round ratios (plain and overlay trials of one round are adjacent in time: the
    figure to steer by on a shared machine), ratio of medians, ratio of best trials."""
    paired: dict[str, float] = {}
    of_medians: dict[str, float] = {}
    of_best: dict[str, float] = {}
    for name, plain in (("overlay_direct_3hop", "plain_3hop"), ("overlay_bouncer_4hop", "plain_4hop"),
                        ("geneve_floor_3hop", "plain_3hop"), ("geneve_floor_4hop", "plain_4hop"),
                        ("overlay_direct_3hop", "geneve_floor_3hop")):
        if name not in results or plain not in results or not results[plain].pps:
            continue
        key = name if plain.startswith("plain") else f"{name}/geneve_floor"
        a, b = results[name], results[plain]
        paired[key] = round(statistics.median(x / y for x, y in zip(a.trials_pps, b.trials_pps, strict=False)
                                              if y), 3)
        of_medians[key] = round(a.pps / b.pps, 3)
        of_best[key] = round(a.best_pps / b.best_pps, 3)
    return {"ratio_to_plain": paired, "ratio_of_medians": of_medians, "ratio_of_best": of_best}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--cpu", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    res = campaign(a.seconds, a.trials, a.cpu)
    if a.json:
        json.dump(res, sys.stdout, indent=2)
        print()
        return 0
    for name, r in res["paths"].items():
        ratio = res["ratio_to_plain"].get(name)
        extra = f"  {ratio:.1%} of plain (paired median)" if ratio else ""
        print(f"{name:22s} {r['hops']} hops  median {r['mpps']:6.3f}  best {r['best_mpps']:6.3f} Mpps"
              f"  loss {r['loss']:.2%}{extra}")
    for k, v in res["ratio_to_plain"].items():
        if "/" in k:
            print(f"{k}: {v:.1%} (paired median)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
