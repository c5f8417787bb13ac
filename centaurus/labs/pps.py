"""Lab-level packet rate: the XDP overlay of a real lab next to the kernel baseline and a plain
XDP_REDIRECT chain, all in one run (``python -m centaurus.labs.pps``).

Paths (64-byte frames from a ``BPF_PROG_RUN`` live-frames generator, counted by an XDP sink on
the receiving endpoint's ``eth0`` -- never by the sender):

- ``plain_3hop`` / ``plain_4hop``: plain XDP_REDIRECT chains, the floor any veth overlay with that
  many hops can reach (:mod:`centaurus.bpf.ppslab`, throwaway namespaces);
- ``overlay_direct_3hop``: the ``perf-p2p`` lab with ``mizar-xdp``, programmed by transitd like any
  lab: s1 -> d1 (agent: Geneve encap) -> d2 (transit: decap) -> r1;
- ``overlay_bouncer_4hop``: the same programs with a bouncer droplet between (a third droplet
  on the path; p2p labs have two, so this shape comes from the throwaway chain);
- ``bridge_vxlan_3hop``: the ``perf-p2p`` lab with ``bridge-vxlan`` (bridge + VXLAN, kernel
  path) -- with ``bridge-nf-call-iptables`` at the kernel default 1 and, separately, at 0.

The generator enters every lab path the same way: it redirects into s1's ``eth0``, so the
frames appear at the droplet side (``ve-s1``): the agent's hook for the overlay, a bridge port
behind an XDP_PASS for the kernel path. CPU per packet at a fixed rate: frames are offered in
1000-frame bursts paced to ``fixed_pps``; the busy time of the pinned CPU (``/proc/stat``), minus
the same pacing loop without frames, divided by the frames sent.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from centaurus.labs import traffic
from centaurus.labs.netns import NetnsLab
from centaurus.labs.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]
PERF_SPEC = ROOT / "labs" / "perf-p2p.yaml"
_LAB_IDS: list[str] = []  # labs and chain namespaces of the last measurement (tests check they are gone)
_CHAIN_NS: list[str] = []


def _cpu_busy(cpu: int) -> float:
    """Busy seconds of one CPU so far (user+nice+system+irq+softirq+steal)."""
    import os

    hz = os.sysconf("SC_CLK_TCK")
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{cpu} "):
            f = [int(x) for x in line.split()[1:]]
            return (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / hz
    raise RuntimeError(f"cpu{cpu} not in /proc/stat")


class PinnedSender:
    """Offers live frames from ONE long-lived thread pinned to ``cpu`` and measures that
    thread's CPU time (CLOCK_THREAD_CPUTIME_ID). Every hop of an XDP path -- and the kernel path's
    softirq work run at the generator's bh-enable -- executes in that thread's context on that
    CPU, so thread CPU time is the path's cost even when other processes share the CPU (wall time
    is not, on a shared machine: it includes time the thread waited to run)."""

    def __init__(self, prog_fd: int, cpu: int) -> None:
        self.prog_fd, self.cpu = prog_fd, cpu

    def run(self, frame: bytes, bursts: list[int], interval: float = 0.0) -> dict[str, float]:
        from centaurus.bpf.testrun import prog_test_run

        out: dict[str, float] = {}
        err: list[BaseException] = []

        def body() -> None:
            try:
                import os

                os.sched_setaffinity(0, {self.cpu})
                c0, t0 = time.thread_time(), time.perf_counter()
                for i, n in enumerate(bursts):
                    prog_test_run(self.prog_fd, frame, repeat=n, live=True, batch_size=64)
                    if interval:
                        delay = t0 + (i + 1) * interval - time.perf_counter()
                        if delay > 0:
                            time.sleep(delay)
                out.update(cpu_s=time.thread_time() - c0, wall_s=time.perf_counter() - t0, sent=sum(bursts))
            except BaseException as exc:
                err.append(exc)

        t = threading.Thread(target=body, name="pinned-gen")
        t.start()
        t.join()
        if err:
            raise err[0]
        return out


def rate_per_core(sender: PinnedSender, frame: bytes, received: Callable[[], int], *, packets: int,
                  trials: int) -> dict[str, Any]:
    """Packets per CPU-second of the generator's core (median over trials), and the loss."""
    rates: list[float] = []
    sent = got = 0
    sender.run(frame, [min(packets, 50_000)])  # warm-up
    for _ in range(trials):
        r0 = received()
        res = sender.run(frame, [packets])
        time.sleep(0.02)
        n = received() - r0
        rates.append(n / max(res["cpu_s"], 1e-6))
        sent += packets
        got += n
    rates.sort()
    return {"pps_per_core": round(rates[len(rates) // 2]), "trials_pps_per_core": [round(r) for r in rates],
            "sent": sent, "received": got, "loss": round(max(0.0, 1 - got / max(sent, 1)), 4)}


def fixed_rate_cpu(sender: PinnedSender, frame: bytes, received: Callable[[], int], *, rate: int,
                   seconds: float, interval: float = 0.05) -> dict[str, float]:
    """CPU per packet at an offered ``rate``: bursts of rate*interval frames every ``interval``
    (50 ms: a BPF_PROG_RUN call has a fixed set-up cost, and on a loaded machine a thread that
    sleeps 10 ms wakes late). ``achieved_pps`` says what really went through."""
    burst = max(1, int(rate * interval))
    r0 = received()
    res = sender.run(frame, [burst] * max(1, int(seconds / interval)), interval=interval)
    time.sleep(0.02)
    got = received() - r0
    return {"offered_pps": rate, "achieved_pps": round(got / res["wall_s"]), "sent": res["sent"],
            "received": got, "cpu_s": round(res["cpu_s"], 4),
            "cpu_ns_per_packet": round(res["cpu_s"] / max(got, 1) * 1e9, 1),
            "core_share": round(res["cpu_s"] / res["wall_s"], 4)}


def generator_baseline(rate: int, seconds: float, cpu: int) -> dict[str, float]:
    """CPU per packet of the generator itself plus one veth hop into a sink, same pacing: what
    every path pays before its own work starts (subtracted to get the dataplane's share)."""
    from centaurus.bpf.pps import LiveGenerator
    from centaurus.bpf.ppslab import Chain, frame64, plain_chain

    chain = Chain(1)
    gen = None
    try:
        gen = LiveGenerator(chain.ns[0], "out")
        with plain_chain(chain) as sink:
            return fixed_rate_cpu(PinnedSender(gen.fd, cpu), frame64(chain.mac(0, "out")), sink.packets,
                                  rate=rate, seconds=seconds)
    finally:
        if gen is not None:
            gen.close()
        chain.delete()


@dataclass
class _Path:
    """One measured path: how to offer frames, where they are counted, how to switch it on."""

    name: str
    hops: int
    gen: Any
    received: Callable[[], int]
    frame: bytes
    attach: Callable[[], None] = lambda: None
    detach: Callable[[], None] = lambda: None
    counters: Callable[[], dict[str, dict[str, int]]] = dict
    extra: dict[str, Any] = field(default_factory=dict)


def _lab(stack: contextlib.ExitStack, dataplane: str, options: dict[str, str] | None = None) -> NetnsLab:
    d = stack.enter_context(tempfile.TemporaryDirectory(prefix="cl-pps-"))
    lab = NetnsLab(Path(d), {"dataplane": dataplane, **(options or {})})
    lab.up(load_spec(PERF_SPEC))
    stack.callback(lab.down)
    _LAB_IDS.append(lab.id)
    return lab


def _lab_path(stack: contextlib.ExitStack, lab: NetnsLab, name: str) -> _Path:
    """s1 -> r1 in a perf-p2p lab of either dataplane: generator into s1's eth0, sink on r1's."""
    from centaurus.bpf import maps as M
    from centaurus.bpf.pps import LiveGenerator, Sink
    from centaurus.bpf.ppslab import frame64

    s1, r1 = lab.endpoint("s1"), lab.endpoint("r1")
    if traffic.ping(lab, "s1", r1.ip, count=3, interval=0.05) != 3:  # ARP, FDBs, first packets
        raise RuntimeError(f"{name}: s1 cannot reach r1 before the measurement")
    kernel = lab.dataplane.name == "bridge-vxlan"
    frame = frame64(s1.mac, r1.mac if kernel else M.GW_MAC, src=s1.ip, dst=r1.ip)
    if kernel:  # frames redirected into s1's eth0 arrive at ve-s1: it needs an XDP program there
        entry = Sink(lab.droplet("d1").netns, s1.veth, mode="pass")
        stack.callback(entry.close)
    sink = Sink(r1.netns, "eth0", mode="drop")
    stack.callback(sink.close)
    gen = LiveGenerator(s1.netns, "eth0")
    stack.callback(gen.close)

    def counters() -> dict[str, dict[str, int]]:
        return {d: {k: v for k, v in lab.stats(d).items() if v} for d in ("d1", "d2")}

    extra = {"bridge_nf_call_iptables": int(lab.options.get("bridge_nf", "1"))} if kernel else {}
    return _Path(name, 3, gen, sink.packets, frame, counters=counters, extra=extra)


def _chain_paths(stack: contextlib.ExitStack) -> list[_Path]:
    from centaurus.bpf.pps import LiveGenerator, Sink
    from centaurus.bpf.ppslab import Chain, OverlayPath, PlainPath, frame64

    out: list[_Path] = []
    for hops in (3, 4):
        chain = Chain(hops)
        stack.callback(chain.delete)
        _CHAIN_NS.extend(chain.ns)
        gen = LiveGenerator(chain.ns[0], "out")
        stack.callback(gen.close)
        sink = Sink(chain.ns[-1], "in")
        stack.callback(sink.close)
        frame = frame64(chain.mac(0, "out"))
        shapes: list[tuple[str, Any]] = [(f"plain_{hops}hop", PlainPath(chain))]
        if hops == 3:
            shapes += [("geneve_floor_3hop", PlainPath(chain, geneve=True)),
                       ("overlay_direct_3hop_chain", OverlayPath(chain, via_bouncer=False))]
        else:
            shapes += [("overlay_bouncer_4hop", OverlayPath(chain, via_bouncer=True))]
        for name, p in shapes:
            stack.callback(p.close)
            out.append(_Path(name, hops, gen, sink.packets, frame, attach=p.attach, detach=p.detach,
                             counters=p.stats))
    return out


def measure_lab_pps(seconds: float = 1.0, trials: int = 3, cpu: int = 0,
                    fixed_pps: int = 100_000, fixed_seconds: float = 2.0) -> dict[str, Any]:
    """Every path above, same run, trials interleaved (path A, B, C, A, B, C, ...) so load from
    elsewhere on this shared machine hits all paths alike. Returns per path: wall-clock pps
    (median of trials, H4's ``pps.trial``), packets per CPU-second of the generator's core,
    counters, and (lab paths) CPU per packet at ``fixed_pps``; plus the ratios the Dataplane
    issue sets targets on."""
    from centaurus.bpf.pps import RateResult, trial

    _LAB_IDS.clear()
    _CHAIN_NS.clear()
    with contextlib.ExitStack() as stack:
        paths = _chain_paths(stack)
        for name, dp, opts in (("overlay_direct_3hop", "mizar-xdp", {}),
                               ("bridge_vxlan_3hop", "bridge-vxlan", {"bridge_nf": "1"}),
                               ("bridge_vxlan_3hop_nf0", "bridge-vxlan", {"bridge_nf": "0"})):
            paths.append(_lab_path(stack, _lab(stack, dp, opts), name))
        results = {p.name: RateResult(p.name, p.hops) for p in paths}
        per_core: dict[str, list[dict[str, Any]]] = {p.name: [] for p in paths}
        before = {p.name: p.counters() for p in paths}
        for _ in range(trials):
            for p in paths:
                p.attach()
                try:
                    rate = trial(results[p.name], p.gen, p.received, p.frame, seconds=seconds, cpu=cpu)
                    per_core[p.name].append(rate_per_core(PinnedSender(p.gen.fd, cpu), p.frame, p.received,
                                                          packets=max(10_000, int(rate * seconds / 2)),
                                                          trials=1))
                finally:
                    p.detach()
        out_paths: dict[str, Any] = {}
        for p in paths:
            d = results[p.name].as_dict()
            rates = sorted(x["pps_per_core"] for x in per_core[p.name])
            d["pps_per_core"] = rates[len(rates) // 2] if rates else 0
            d["trials_pps_per_core"] = rates
            after = p.counters()
            d["counters"] = {h: {k: v - before[p.name].get(h, {}).get(k, 0) for k, v in c.items()
                                 if v - before[p.name].get(h, {}).get(k, 0)} for h, c in after.items()}
            d.update(p.extra)
            out_paths[p.name] = d
        base = generator_baseline(fixed_pps, fixed_seconds, cpu)
        for p in paths:
            if p.name.startswith(("overlay_direct_3hop", "bridge_vxlan")) and not p.name.endswith("chain"):
                p.attach()
                try:
                    fr = fixed_rate_cpu(PinnedSender(p.gen.fd, cpu), p.frame, p.received, rate=fixed_pps,
                                        seconds=fixed_seconds)
                finally:
                    p.detach()
                fr["dataplane_ns_per_packet"] = round(max(0.0, fr["cpu_ns_per_packet"]
                                                          - base["cpu_ns_per_packet"]), 1)
                out_paths[p.name]["fixed_rate"] = fr

    def ratio(a: str, b: str, key: str = "pps") -> float | None:
        x, y = out_paths.get(a, {}).get(key), out_paths.get(b, {}).get(key)
        return round(float(x) / float(y), 3) if x is not None and y else None

    def cpu_ratio(a: str, b: str) -> float | None:
        x = float(out_paths[a]["fixed_rate"]["dataplane_ns_per_packet"])
        y = float(out_paths[b]["fixed_rate"]["dataplane_ns_per_packet"])
        return round(x / y, 3) if y else None

    ratios: dict[str, float | None] = {}
    for label, a, b in (("direct_vs_plain_3hop", "overlay_direct_3hop", "plain_3hop"),
                        ("direct_chain_vs_plain_3hop", "overlay_direct_3hop_chain", "plain_3hop"),
                        ("geneve_floor_vs_plain_3hop", "geneve_floor_3hop", "plain_3hop"),
                        ("bouncer_vs_plain_4hop", "overlay_bouncer_4hop", "plain_4hop"),
                        ("direct_vs_bridge_vxlan", "overlay_direct_3hop", "bridge_vxlan_3hop"),
                        ("direct_vs_bridge_vxlan_nf0", "overlay_direct_3hop", "bridge_vxlan_3hop_nf0")):
        ratios[label] = ratio(a, b)
        ratios[label + "_per_core"] = ratio(a, b, "pps_per_core")
    ratios["cpu_per_packet_vs_bridge_vxlan"] = cpu_ratio("overlay_direct_3hop", "bridge_vxlan_3hop")
    ratios["cpu_per_packet_vs_bridge_vxlan_nf0"] = cpu_ratio("overlay_direct_3hop", "bridge_vxlan_3hop_nf0")
    return {
        "frame_bytes": 64, "cpu": cpu, "seconds": seconds, "trials": trials, "fixed_pps": fixed_pps,
        "method": {"pps": "receiver count / generator wall time, median of interleaved trials",
                   "pps_per_core": "receiver count / CPU time of the generator's pinned thread",
                   "cpu_per_packet": "thread CPU per received packet at the fixed rate, minus the "
                                     "generator + one-hop-sink baseline"},
        "load_average": Path("/proc/loadavg").read_text().split()[:3],
        "paths": out_paths, "generator_baseline": base, "ratios": ratios, "labs": list(_LAB_IDS),
        "chain_netns": list(_CHAIN_NS),
        "targets": {"direct_vs_plain_3hop": ">= 0.9", "bouncer_vs_plain_4hop": ">= 0.9",
                    "direct_vs_bridge_vxlan": ">= 10", "cpu_per_packet_vs_bridge_vxlan": "<= 0.2"},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Lab-level packet rate: overlay vs plain chain vs bridge-vxlan")
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--cpu", type=int, default=0)
    ap.add_argument("--fixed-pps", type=int, default=100_000)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    res = measure_lab_pps(a.seconds, a.trials, a.cpu, a.fixed_pps)
    if a.json:
        json.dump(res, sys.stdout, indent=1)
        print()
        return 0
    for name, p in res["paths"].items():
        fr = p.get("fixed_rate")
        cpu = (f"  {fr['dataplane_ns_per_packet']:7.0f} ns/pkt ({fr['core_share']:.1%} of a core) at "
               f"{fr['offered_pps'] // 1000} kpps") if fr else ""
        print(f"{name:26s} {p['hops']} hops {p['mpps']:7.3f} Mpps wall, {p['pps_per_core'] / 1e6:7.3f} Mpps "
              f"per core  loss {p['loss']:6.2%}{cpu}")
    print(f"load average {' '.join(res['load_average'])} (shared machine: compare ratios, not absolutes)")
    for k, v in res["ratios"].items():
        print(f"{k:42s} {v}  (target {res['targets'].get(k, '-')})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
