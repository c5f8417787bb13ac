"""``net-overhead``: CPU and memory the dataplane costs a host, idle and under traffic, against
the kernel bridge+VXLAN baseline in the same run (PERF-NET-2).

- CPU per packet at a fixed offered rate (default 100 kpps, 64-B frames): CPU time of the pinned
  generator thread per received packet -- every hop of both paths runs in that thread's
  softirq context -- minus the same for the generator + one veth hop into a sink (what both
  paths pay before the dataplane starts). Rounds interleave baseline, overlay, kernel path.
  Kernel work deferred to ksoftirqd is not in the thread's time, which can only flatter the
  kernel path, i.e. the comparison errs against the overlay.
- Per host (XDP): the overlay programs' own run time per packet and share of a core from the
  kernel's BPF statistics (switched on only for that phase), grouped by the droplet the program
  is attached in.
- Memory per host: transitd RSS + the host's pinned BPF maps (memlock), idle and under traffic;
  machine memory used for both dataplanes (the kernel path's per-device memory cannot be
  attributed from /proc); transitd CPU while idle (the daemon's background cost).
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from centaurus.perf import hostcost, shared
from centaurus.perf.core import Context, Figure, Measurement, Result
from centaurus.perf.measurements.packet_rate import DEFAULT_LABS
from centaurus.perf.measurements.resource_usage import Sampler
from centaurus.trafficgen.base import Trial


def _transitd(lab: Any) -> dict[str, int]:
    """host -> pid of the lab's daemons (transitd on mizar-xdp labs; none on bridge-vxlan)."""
    try:
        procs = lab.status().get("processes", [])
    except Exception:
        return {}
    return {str(p["host"]): int(p["pid"]) for p in procs if p.get("alive", True) and p.get("pid")}


def lab_programs(lab: Any) -> list[tuple[str, str, int]]:
    """(host, interface, prog fd) of every XDP program attached on the lab's droplets
    (substrate interface and endpoint veths). Caller closes the fds."""
    from centaurus.bpf import xdp

    out: list[tuple[str, str, int]] = []
    for d in lab.spec.droplets:
        info = lab.droplet(d.name)
        devs = [info.ifname] + [lab.endpoint(e.name).veth for e in lab.spec.endpoints if e.host == d.name]
        for dev in devs:
            fd = xdp.attached_prog_fd(dev, netns=info.netns)
            if fd is not None:
                out.append((d.name, dev, fd))
    return out


def host_memory(lab: Any) -> dict[str, dict[str, int]]:
    """Per droplet: daemon RSS and pinned-map memlock bytes."""
    st = lab.status()
    pin_root = Path(str((st.get("bpffs") or {}).get("path") or ""))
    daemons = _transitd(lab)
    out = {}
    for d in lab.spec.droplets:
        rss = 0
        if d.name in daemons:
            try:
                rss = hostcost.proc_rss_bytes(daemons[d.name])
            except OSError:
                rss = 0
        maps = hostcost.pinned_maps_memlock(pin_root / d.name) if str(pin_root) not in ("", ".") else 0
        out[d.name] = {"daemon_rss": rss, "bpf_maps": maps, "total": rss + maps}
    return out


class NetOverhead(Measurement):
    method = "net-overhead"

    def gather(self, ctx: Context, params: dict[str, Any]) -> Result:
        import os

        gen = shared.generator(ctx, str(params.get("generator", "xdp-live")), params.get("generator_options"))
        labs_cfg = params.get("labs", DEFAULT_LABS)
        rate = float(params.get("fixed_pps", 100_000))
        secs = float(params.get("seconds", ctx.pick(1.0, 5.0)))
        rounds = int(params.get("rounds", ctx.pick(2, 3)))
        idle_s = float(params.get("idle_s", ctx.pick(1.0, 5.0)))
        size = int(params.get("frame_size", 64))
        labs = {}
        for key in ("mizar", "kernel"):
            cfg = labs_cfg[key]
            labs[key] = shared.lab(
                ctx,
                str(cfg["spec"]),
                str(cfg["dataplane"]),
                {k: str(v) for k, v in (cfg.get("options") or {}).items()},
                str(cfg.get("backend", "netns")),
            )
        paths = {
            "generator_baseline": {"kind": "chain", "hops": 1},
            "mizar-xdp": {"kind": "endpoint", "lab": labs["mizar"], "src": "s1", "dst": "r1"},
            "bridge-vxlan": {"kind": "endpoint", "lab": labs["kernel"], "src": "s1", "dst": "r1"},
        }
        for desc in paths.values():
            gen.route(desc) if hasattr(gen, "route") else None  # set up before the idle window
        daemons = _transitd(labs["mizar"])
        watch = ctx.state.setdefault("watch", {})
        watch.update({f"transitd@{h}": pid for h, pid in daemons.items()})
        own = ctx.state.get("sampler") is None
        sampler: Sampler = ctx.state.get("sampler") or Sampler(0.25, watch).start()
        ctx.progress.total(rounds * len(paths) + 3)
        res = Result()
        try:
            # idle
            sampler.mark("idle")
            mem_idle = {"mizar-xdp": hostcost.mem_used_bytes()}
            d0 = {h: hostcost.proc_cpu_seconds(p) for h, p in daemons.items()}
            t0 = time.monotonic()
            time.sleep(idle_s)
            dt = time.monotonic() - t0
            idle_cpu = {h: (hostcost.proc_cpu_seconds(p) - d0[h]) / dt for h, p in daemons.items()}
            host_idle = host_memory(labs["mizar"])
            ctx.progress.advance(1, "idle")
            # traffic at the fixed rate, interleaved
            sampler.mark(f"traffic {rate / 1000:g} kpps")
            per: dict[str, list[float]] = {n: [] for n in paths}
            achieved: dict[str, list[float]] = {n: [] for n in paths}
            mem_traffic: dict[str, int] = {}
            for rnd in range(rounds):
                for name, desc in paths.items():
                    r = gen.run_trial(desc, Trial(size, rate, secs, 1))
                    if r.rx_packets <= 0:
                        raise RuntimeError(f"{name}: nothing received at {rate:g} pps")
                    per[name].append(float(r.extra["cpu_s"]) / r.rx_packets * 1e9)
                    achieved[name].append(r.rx_pps)
                    mem_traffic[name] = hostcost.mem_used_bytes()
                    ctx.progress.advance(1, f"round {rnd + 1}/{rounds} {name}")
            host_traffic = host_memory(labs["mizar"])
            # per-host program cost with BPF statistics on (a separate trial: stats cost time)
            sampler.mark("bpf stats")
            progs = lab_programs(labs["mizar"])
            host_prog: dict[str, dict[str, float]] = {}
            try:
                with hostcost.bpf_stats() as enabled:
                    if not enabled:
                        res.notes.append("the kernel refused BPF_ENABLE_STATS: program run times stay 0")
                    before = {(h, dev): hostcost.prog_runtime(fd) for h, dev, fd in progs}
                    r = gen.run_trial(paths["mizar-xdp"], Trial(size, rate, secs, 1))
                    after = {(h, dev): hostcost.prog_runtime(fd) for h, dev, fd in progs}
            finally:
                for _h, _d, fd in progs:
                    os.close(fd)
            ctx.progress.advance(1, "bpf stats")
            for (h, dev), (cnt1, ns1) in after.items():
                cnt0, ns0 = before[h, dev]
                if cnt1 - cnt0 <= 0:
                    continue
                e = host_prog.setdefault(h, {"runs": 0.0, "ns": 0.0})
                e["runs"] += cnt1 - cnt0
                e["ns"] += ns1 - ns0
            sampler.mark("done")
        finally:
            if own:
                sampler.stop()
        ctx.progress.advance(1, "figures")

        med = {n: statistics.median(v) for n, v in per.items()}
        base = med["generator_baseline"]
        dp = {n: max(0.0, med[n] - base) for n in ("mizar-xdp", "bridge-vxlan")}
        for n in paths:
            res.figures.append(
                Figure(
                    "cpu_ns_per_packet",
                    round(med[n], 1),
                    "ns",
                    {"path": n, "rate_pps": f"{rate:g}"},
                    note=f"thread CPU per received packet, median of {rounds}; achieved "
                    f"{statistics.median(achieved[n]):.0f} pps",
                )
            )
        for n, v in dp.items():
            res.figures.append(
                Figure(
                    "dataplane_cpu_ns_per_packet",
                    round(v, 1),
                    "ns",
                    {"dataplane": n, "rate_pps": f"{rate:g}"},
                    reference={"name": "generator_baseline", "ns": round(base, 1)},
                )
            )
            res.perfdata.append(
                {
                    "data": {"CpuPerPacket": v, "CorePercent": v * rate / 1e7},
                    "unit": "ns",
                    "labels": {
                        "Metric": "resource_usage",
                        "Resource": "cpu",
                        "Dataplane": n,
                        "RatePps": f"{rate:g}",
                    },
                }
            )
        if dp["bridge-vxlan"] > 0:
            res.figures.append(
                Figure(
                    "cpu_per_packet_vs_bridge_vxlan",
                    round(dp["mizar-xdp"] / dp["bridge-vxlan"], 4),
                    "ratio",
                    {"rate_pps": f"{rate:g}", "frame_size": str(size)},
                    reference={
                        "name": "bridge-vxlan",
                        "ns": round(dp["bridge-vxlan"], 1),
                        "path_ns": round(dp["mizar-xdp"], 1),
                    },
                    note="dataplane CPU per packet (generator + 1-hop baseline subtracted)",
                )
            )
        for h, e in sorted(host_prog.items()):
            ns_pkt = e["ns"] / r.rx_packets if r.rx_packets else 0.0
            share = e["ns"] / 1e9 / r.duration_s if r.duration_s else 0.0
            res.figures.append(
                Figure(
                    "host_program_ns_per_packet",
                    round(ns_pkt, 1),
                    "ns",
                    {"host": h, "dataplane": "mizar-xdp", "rate_pps": f"{rate:g}"},
                    note=f"BPF run_time_ns / received packets ({int(e['runs'])} program runs)",
                )
            )
            res.figures.append(
                Figure(
                    "host_cpu_share",
                    round(100 * share, 3),
                    "%",
                    {"host": h, "dataplane": "mizar-xdp", "rate_pps": f"{rate:g}", "phase": "traffic"},
                    note="XDP program time / wall time",
                )
            )
        if not host_prog:
            res.notes.append("BPF statistics unavailable or empty: no per-host program figures")
        for h, c in idle_cpu.items():
            res.figures.append(
                Figure(
                    "host_cpu_share",
                    round(100 * c, 3),
                    "%",
                    {"host": h, "dataplane": "mizar-xdp", "phase": "idle", "what": "transitd"},
                )
            )
        for phase, mem in (("idle", host_idle), ("traffic", host_traffic)):
            for h, m in mem.items():
                res.figures.append(
                    Figure(
                        "host_memory",
                        round(m["total"] / 2**20, 2),
                        "MiB",
                        {"host": h, "dataplane": "mizar-xdp", "phase": phase},
                        note=f"transitd RSS {m['daemon_rss'] / 2**20:.1f} MiB + BPF maps "
                        f"{m['bpf_maps'] / 2**20:.1f} MiB",
                    )
                )
                res.perfdata.append(
                    {
                        "data": {"Total": m["total"], "DaemonRss": m["daemon_rss"], "BpfMaps": m["bpf_maps"]},
                        "unit": "B",
                        "labels": {
                            "Metric": "resource_usage",
                            "Resource": "memory",
                            "Host": h,
                            "Dataplane": "mizar-xdp",
                            "Phase": phase,
                        },
                    }
                )
            res.figures.append(
                Figure(
                    "host_memory",
                    0.0,
                    "MiB",
                    {"host": "any", "dataplane": "bridge-vxlan", "phase": phase},
                    note="no daemon; kernel bridge/VXLAN memory not attributable per host",
                )
            )
        for n, used in mem_traffic.items():
            res.figures.append(
                Figure("machine_memory_used", round(used / 2**20, 1), "MiB", {"path": n, "phase": "traffic"})
            )
        res.figures.append(
            Figure(
                "machine_memory_used",
                round(mem_idle["mizar-xdp"] / 2**20, 1),
                "MiB",
                {"phase": "idle", "labs": "both up"},
            )
        )
        if own:
            res.series = sampler.series({"measurement": "net-overhead"})
        res.details = {
            "net_overhead": {
                "cpu_ns_per_packet": per,
                "achieved_pps": achieved,
                "marks": sampler.marks,
                "host_programs": host_prog,
                "host_memory": {"idle": host_idle, "traffic": host_traffic},
                "transitd_idle_cpu_share": idle_cpu,
            }
        }
        return res
