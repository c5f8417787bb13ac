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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from centaurus.labs import traffic
from centaurus.labs.netns import NetnsLab
from centaurus.labs.spec import load_spec

ROOT = Path(__file__).resolve().parents[2]
PERF_SPEC = ROOT / "labs" / "perf-p2p.yaml"


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
                   seconds: float) -> dict[str, float]:
    """CPU per packet at an offered ``rate``: bursts of rate/100 frames every 10 ms."""
    burst = max(1, rate // 100)
    r0 = received()
    res = sender.run(frame, [burst] * max(1, int(seconds * 100)), interval=0.01)
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


@contextlib.contextmanager
def _lab(dataplane: str, options: dict[str, str] | None = None) -> Iterator[NetnsLab]:
    with tempfile.TemporaryDirectory(prefix="cl-pps-") as d:
        lab = NetnsLab(Path(d), {"dataplane": dataplane, **(options or {})})
        lab.up(load_spec(PERF_SPEC))
        try:
            yield lab
        finally:
            lab.down()


def _lab_path(lab: NetnsLab, name: str, *, seconds: float, trials: int, cpu: int,
              fixed_pps: int) -> dict[str, Any]:
    """Measure s1 -> r1 in a perf-p2p lab of either dataplane."""
    from centaurus.bpf import maps as M
    from centaurus.bpf.pps import LiveGenerator, Sink, measure
    from centaurus.bpf.ppslab import frame64

    s1, r1 = lab.endpoint("s1"), lab.endpoint("r1")
    # warm up: ARP / bridge FDBs learned, first packets through
    if traffic.ping(lab, "s1", r1.ip, count=3, interval=0.05) != 3:
        raise RuntimeError(f"{name}: s1 cannot reach r1 before the measurement")
    kernel = lab.dataplane.name == "bridge-vxlan"
    dst_mac = r1.mac if kernel else M.GW_MAC
    frame = frame64(s1.mac, dst_mac, src=s1.ip, dst=r1.ip)
    entry: Any = None
    if kernel:  # frames redirected into s1's eth0 arrive at ve-s1: it needs an XDP program there
        entry = Sink(lab.droplet("d1").netns, s1.veth, mode="pass")
    sink = Sink(r1.netns, "eth0", mode="drop")
    gen = LiveGenerator(s1.netns, "eth0")
    try:
        before = {d: lab.stats(d) for d in ("d1", "d2")}
        res = measure(name, 3, gen, sink.packets, frame, seconds=seconds, trials=trials, cpu=cpu)
        after = {d: lab.stats(d) for d in ("d1", "d2")}
        out = res.as_dict()
        out["counters"] = {d: {k: after[d][k] - before[d].get(k, 0) for k in after[d]
                               if after[d][k] - before[d].get(k, 0)} for d in after}
        sender = PinnedSender(gen.fd, cpu)
        out.update(rate_per_core(sender, frame, sink.packets, packets=max(10_000, int(out["pps"] * seconds)),
                                 trials=trials))
        out["fixed_rate"] = fixed_rate_cpu(sender, frame, sink.packets, rate=fixed_pps,
                                           seconds=max(2.0, seconds))
        return out
    finally:
        gen.close()
        sink.close()
        if entry is not None:
            entry.close()


def _chain_paths(seconds: float, trials: int, cpu: int) -> dict[str, Any]:
    from centaurus.bpf.pps import LiveGenerator, measure
    from centaurus.bpf.ppslab import Chain, frame64, overlay_chain, plain_chain

    out: dict[str, Any] = {}
    for hops in (3, 4):
        chain = Chain(hops)
        gen = None
        try:
            gen = LiveGenerator(chain.ns[0], "out")
            frame = frame64(chain.mac(0, "out"))
            sender = PinnedSender(gen.fd, cpu)
            with plain_chain(chain) as sink:
                r = measure(f"plain_{hops}hop", hops, gen, sink.packets, frame, seconds=seconds,
                            trials=trials, cpu=cpu).as_dict()
                r.update(rate_per_core(sender, frame, sink.packets,
                                       packets=max(10_000, int(r["pps"] * seconds)), trials=trials))
                out[f"plain_{hops}hop"] = r
            shapes = [("overlay_direct_3hop_chain", False)] if hops == 3 else [("overlay_bouncer_4hop", True)]
            for name, via in shapes:
                with overlay_chain(chain, via_bouncer=via) as (sink, _ovs):
                    r = measure(name, hops, gen, sink.packets, frame, seconds=seconds, trials=trials,
                                cpu=cpu).as_dict()
                    r.update(rate_per_core(sender, frame, sink.packets,
                                           packets=max(10_000, int(r["pps"] * seconds)), trials=trials))
                    out[name] = r
        finally:
            if gen is not None:
                gen.close()
            chain.delete()
    return out


def measure_lab_pps(seconds: float = 1.0, trials: int = 3, cpu: int = 0,
                    fixed_pps: int = 100_000) -> dict[str, Any]:
    """Every path above, same run; returns paths (pps, trials, counters, CPU at the fixed rate),
    the ratios the Dataplane issue sets targets on, and the bridge-nf setting of each baseline."""
    paths: dict[str, Any] = {}
    paths.update(_chain_paths(seconds, trials, cpu))
    base = generator_baseline(fixed_pps, max(2.0, seconds), cpu)
    with _lab("mizar-xdp") as lab:
        paths["overlay_direct_3hop"] = _lab_path(lab, "overlay_direct_3hop", seconds=seconds, trials=trials,
                                                 cpu=cpu, fixed_pps=fixed_pps)
    for bnf in ("1", "0"):
        name = "bridge_vxlan_3hop" + ("" if bnf == "1" else "_nf0")
        with _lab("bridge-vxlan", {"bridge_nf": bnf}) as lab:
            paths[name] = _lab_path(lab, name, seconds=seconds, trials=trials, cpu=cpu, fixed_pps=fixed_pps)
            paths[name]["bridge_nf_call_iptables"] = int(bnf)

    def ratio(a: str, b: str) -> float | None:
        """Same-run ratio of packets per CPU-second of the generator's core (robust to other
        load on a shared machine); the wall-clock pps of each path is reported beside it."""
        if a in paths and b in paths and paths[b].get("pps_per_core"):
            return round(float(paths[a]["pps_per_core"]) / float(paths[b]["pps_per_core"]), 3)
        return None

    for p in paths.values():
        fr = p.get("fixed_rate")
        if fr:  # the path's own work: minus the generator and its first hop into a sink
            own = fr["cpu_ns_per_packet"] - base["cpu_ns_per_packet"]
            fr["dataplane_ns_per_packet"] = round(max(0.0, own), 1)

    def cpu_ratio(a: str, b: str) -> float | None:
        x = float(paths[a]["fixed_rate"]["dataplane_ns_per_packet"])
        y = float(paths[b]["fixed_rate"]["dataplane_ns_per_packet"])
        return round(x / y, 3) if y else None

    return {
        "frame_bytes": 64, "cpu": cpu, "seconds": seconds, "trials": trials, "fixed_pps": fixed_pps,
        "paths": paths, "generator_baseline": base,
        "ratios": {
            "direct_vs_plain_3hop": ratio("overlay_direct_3hop", "plain_3hop"),
            "direct_chain_vs_plain_3hop": ratio("overlay_direct_3hop_chain", "plain_3hop"),
            "bouncer_vs_plain_4hop": ratio("overlay_bouncer_4hop", "plain_4hop"),
            "direct_vs_bridge_vxlan": ratio("overlay_direct_3hop", "bridge_vxlan_3hop"),
            "direct_vs_bridge_vxlan_nf0": ratio("overlay_direct_3hop", "bridge_vxlan_3hop_nf0"),
            "cpu_per_packet_vs_bridge_vxlan": cpu_ratio("overlay_direct_3hop", "bridge_vxlan_3hop"),
            "cpu_per_packet_vs_bridge_vxlan_nf0": cpu_ratio("overlay_direct_3hop", "bridge_vxlan_3hop_nf0"),
        },
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
    for k, v in res["ratios"].items():
        print(f"{k:36s} {v}  (target {res['targets'].get(k, '-')})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
