"""``packet-rate``: received packet rate per path and frame size, all paths in one run with
trials interleaved, same-run ratios, and NDR/PDR per path and size (PERF-NET-1).

Params (campaign YAML; defaults below):

- ``generator`` (``xdp-live``), ``generator_options``; ``sizes`` (RFC 2544 frame sizes incl.
  FCS), ``flows``, ``rounds`` (interleaved max-rate trials per path and size), ``trial_s``;
- ``labs``: name -> ``{spec, dataplane, options}`` brought up once per campaign;
- ``paths``: ``{name, kind: chain|endpoint, ...}`` as the generator understands them
  (``lab:`` names one of ``labs``);
- ``comparisons``: ``{figure, path, reference, labels}`` -> figure = path / reference, the
  median over rounds of the per-round ratio (the two trials of a round are adjacent in time,
  so load from elsewhere on this shared machine hits both alike); ``worst``: ``{figure, of}``
  -> the minimum of one comparison over its labels and sizes (PERF-NET-1 takes the worse path);
- ``ndr``: NDR/PDR search settings (:class:`centaurus.perf.ndr.SearchConfig`), ``ndr: false``
  skips it.

Rates are computed two ways: ``rx / wall`` (what the run saw) and ``rx / CPU time of the pinned
generator thread`` (``per_core``: every XDP hop runs in that thread, so this is what one
dedicated core does whatever else shares the machine). Ratios use ``per_core`` (``rate_basis``
param) and report the other alongside.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any

from centaurus.perf import shared
from centaurus.perf.core import Context, Figure, Measurement, MeasurementError, Result
from centaurus.perf.ndr import SearchConfig, Searcher
from centaurus.trafficgen.base import Trial, TrialResult
from centaurus.trafficgen.frames import l1_gbps, line_rate_pps

PERF_P2P = "labs/perf-p2p.yaml"
DEFAULT_LABS = {
    "mizar": {"spec": PERF_P2P, "dataplane": "mizar-xdp"},
    "kernel": {"spec": PERF_P2P, "dataplane": "bridge-vxlan", "options": {"bridge_nf": "1"}},
}
DEFAULT_PATHS: list[dict[str, Any]] = [
    {"name": "raw_1hop", "kind": "chain", "hops": 1},
    {"name": "plain_3hop", "kind": "chain", "hops": 3},
    {"name": "geneve_floor_3hop", "kind": "chain", "hops": 3, "mode": "geneve"},
    {"name": "overlay_direct_3hop", "kind": "endpoint", "lab": "mizar", "src": "s1", "dst": "r1"},
    {"name": "overlay_direct_3hop_chain", "kind": "chain", "mode": "overlay", "via": "direct"},
    {"name": "plain_4hop", "kind": "chain", "hops": 4},
    {"name": "overlay_bouncer_4hop", "kind": "chain", "mode": "overlay", "via": "bouncer"},
    {"name": "bridge_vxlan_3hop", "kind": "endpoint", "lab": "kernel", "src": "s1", "dst": "r1"},
]
DEFAULT_COMPARISONS: list[dict[str, Any]] = [
    {
        "figure": "overlay_vs_plain_chain",
        "path": "overlay_direct_3hop",
        "reference": "plain_3hop",
        "labels": {"via": "direct", "hops": "3"},
    },
    {
        "figure": "overlay_vs_plain_chain",
        "path": "overlay_bouncer_4hop",
        "reference": "plain_4hop",
        "labels": {"via": "bouncer", "hops": "4"},
    },
    {
        "figure": "overlay_chain_vs_plain_chain",
        "path": "overlay_direct_3hop_chain",
        "reference": "plain_3hop",
        "labels": {"via": "direct", "hops": "3"},
    },
    {
        "figure": "geneve_floor_vs_plain_chain",
        "path": "geneve_floor_3hop",
        "reference": "plain_3hop",
        "labels": {"hops": "3"},
    },
    {
        "figure": "overlay_vs_geneve_floor",
        "path": "overlay_direct_3hop_chain",
        "reference": "geneve_floor_3hop",
        "labels": {"via": "direct", "hops": "3"},
    },
    {
        "figure": "overlay_vs_bridge_vxlan",
        "path": "overlay_direct_3hop",
        "reference": "bridge_vxlan_3hop",
        "labels": {"via": "direct"},
    },
    {
        "figure": "overlay_vs_raw_1hop",
        "path": "overlay_direct_3hop",
        "reference": "raw_1hop",
        "labels": {"via": "direct"},
    },
]
DEFAULT_WORST = [{"figure": "overlay_vs_plain_chain_worst", "of": "overlay_vs_plain_chain"}]


def _median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else 0.0


class PacketRate(Measurement):
    method = "packet-rate"

    def gather(self, ctx: Context, params: dict[str, Any]) -> Result:
        p = dict(params)
        gen = shared.generator(ctx, str(p.get("generator", "xdp-live")), p.get("generator_options"))
        sizes = [
            int(s) for s in p.get("sizes", ctx.pick([64, 512, 1518], [64, 128, 256, 512, 1024, 1280, 1518]))
        ]
        rounds = int(p.get("rounds", ctx.pick(3, 5)))
        trial_s = float(p.get("trial_s", ctx.pick(0.3, 1.0)))
        flows = int(p.get("flows", 1))
        basis = str(p.get("rate_basis", "per_core"))
        if basis not in ("per_core", "wall"):
            raise MeasurementError(f"rate_basis must be per_core or wall, not {basis!r}")
        labs_cfg = p.get("labs", DEFAULT_LABS)
        paths = [dict(x) for x in p.get("paths", DEFAULT_PATHS)]
        descs: dict[str, dict[str, Any]] = {}
        for path in paths:
            name = str(path.pop("name"))
            if "lab" in path:
                cfg = labs_cfg.get(path["lab"])
                if cfg is None:
                    raise MeasurementError(
                        f"path {name}: unknown lab {path['lab']!r} (labs: {sorted(labs_cfg)})"
                    )
                ctx.log(f"bringing up lab {path['lab']} ({cfg['spec']}, {cfg['dataplane']})")
                path["lab"] = shared.lab(
                    ctx,
                    str(cfg["spec"]),
                    str(cfg["dataplane"]),
                    {k: str(v) for k, v in (cfg.get("options") or {}).items()},
                    str(cfg.get("backend", "netns")),
                )
            descs[name] = path
        ctx.state["packet_rate_paths"] = descs
        ctx.progress.total(len(sizes) * rounds * len(descs))

        # interleaved max-rate trials: size by size, round by round, every path in turn
        trials: dict[tuple[str, int], list[TrialResult]] = defaultdict(list)
        for size in sizes:
            for rnd in range(rounds):
                for name, desc in descs.items():
                    trials[name, size].append(gen.run_trial(desc, Trial(size, 0.0, trial_s, flows)))
                    ctx.progress.advance(1, f"{size} B round {rnd + 1}/{rounds} {name}")
        counters = {name: _counters(gen, desc) for name, desc in descs.items()}

        res = Result()
        table: dict[str, dict[int, dict[str, Any]]] = defaultdict(dict)
        for (name, size), rs in trials.items():
            wall = [r.rx_pps for r in rs]
            core = [float(r.extra.get("pps_per_core", 0.0)) for r in rs]
            tx, rx = sum(r.tx_packets for r in rs), sum(r.rx_packets for r in rs)
            loss = max(0.0, 1 - rx / tx) if tx else 1.0
            row: dict[str, Any] = {
                "pps": _median(wall),
                "pps_per_core": _median(core),
                "trials_pps": wall,
                "trials_pps_per_core": core,
                "sent": tx,
                "received": rx,
                "loss": loss,
                "gbps_l1": l1_gbps(_median(wall), size),
                "gbps_l1_per_core": l1_gbps(_median(core), size),
            }
            table[name][size] = row
            labels = {"Path": name, "FrameSize": str(size), "Flows": str(flows), "Generator": gen.name}
            res.perfdata.append(
                {
                    "data": {
                        "Rate": row["pps"],
                        "RatePerCore": row["pps_per_core"],
                        "Gbps": row["gbps_l1"],
                        "Loss": loss,
                    },
                    "unit": "pps",
                    "labels": {"Metric": "packet_rate", **labels},
                }
            )
            res.figures.append(
                Figure(
                    "packet_rate_mpps",
                    round(row[_key(basis)] / 1e6, 4),
                    "Mpps",
                    {"path": name, "frame_size": str(size)},
                    note=f"basis {basis}",
                )
            )
            res.figures.append(
                Figure(
                    "packet_rate_gbps_l1",
                    round(row["gbps_l1_per_core" if basis == "per_core" else "gbps_l1"], 4),
                    "Gbps",
                    {"path": name, "frame_size": str(size)},
                )
            )
            if loss > 0:
                res.notes.append(f"{name} at {size} B lost {loss:.3%} of {tx} frames at the maximum rate")

        # same-run ratios (paired by round)
        for cmp in p.get("comparisons", DEFAULT_COMPARISONS):
            a, b = str(cmp["path"]), str(cmp["reference"])
            if a not in descs or b not in descs:
                continue
            for size in sizes:
                ra, rb = table[a][size], table[b][size]
                pairs = [
                    x / y
                    for x, y in zip(ra[f"trials_{_key(basis)}"], rb[f"trials_{_key(basis)}"], strict=False)
                    if y
                ]
                other = "wall" if basis == "per_core" else "per_core"
                pairs_o = [
                    x / y
                    for x, y in zip(ra[f"trials_{_key(other)}"], rb[f"trials_{_key(other)}"], strict=False)
                    if y
                ]
                res.figures.append(
                    Figure(
                        str(cmp["figure"]),
                        round(_median(pairs), 4),
                        "ratio",
                        {
                            **{k: str(v) for k, v in (cmp.get("labels") or {}).items()},
                            "frame_size": str(size),
                        },
                        reference={
                            "name": b,
                            "mpps": round(rb[_key(basis)] / 1e6, 4),
                            "path_mpps": round(ra[_key(basis)] / 1e6, 4),
                            f"ratio_{other}": round(_median(pairs_o), 4),
                        },
                        note=f"{a} / {b}, median of {len(pairs)} paired rounds ({basis} rates)",
                    )
                )
        for w in p.get("worst", DEFAULT_WORST):
            of = [f for f in res.figures if f.name == w["of"]]
            if of:
                worst = min(of, key=lambda f: f.value)
                res.figures.append(
                    Figure(
                        str(w["figure"]),
                        worst.value,
                        "ratio",
                        dict(worst.labels),
                        reference=worst.reference,
                        note=f"worst of {len(of)} {w['of']} figures: {worst.note}",
                    )
                )

        # NDR / PDR, seeded with the interleaved max-rate trials
        ndr_cfg = p.get("ndr", {})
        gen_cfg = getattr(gen, "cfg", None) or {}
        line_gbps = float(p.get("line_rate_gbps") or gen_cfg.get("line_rate_gbps") or 0)
        ndr_out: dict[str, dict[str, Any]] = defaultdict(dict)
        if ndr_cfg is not False:
            cfg = SearchConfig.from_params(
                {"trial_s": ctx.pick(0.3, 2.0), "max_iterations": ctx.pick(6, 12), **(ndr_cfg or {})}
            )
            for (name, size), rs in trials.items():
                desc = descs[name]
                first = TrialResult(
                    sum(r.tx_packets for r in rs),
                    sum(r.rx_packets for r in rs),
                    sum(r.duration_s for r in rs),
                )

                def run(rate: float, desc: dict[str, Any] = desc, size: int = size) -> TrialResult:
                    out: TrialResult = gen.run_trial(desc, Trial(size, rate, cfg.trial_s, flows))
                    return out

                for sr in Searcher(run, size, cfg, first=first).run():
                    ndr_out[name][f"{sr.name}@{size}"] = sr.as_dict()
                    res.perfdata.append(
                        {
                            "data": {"Rate": sr.rate_pps, "Gbps": sr.gbps_l1},
                            "unit": "pps",
                            "labels": {
                                "Metric": "ndr_pdr",
                                "Kind": sr.name,
                                "Path": name,
                                "FrameSize": str(size),
                                "Method": sr.method,
                            },
                        }
                    )
                    res.figures.append(
                        Figure(
                            f"{sr.name.lower().replace('%', 'pct')}_mpps",
                            round(sr.mpps, 4),
                            "Mpps",
                            {"path": name, "frame_size": str(size)},
                            note=f"{sr.method}, {sr.iterations} trial(s), {sr.gbps_l1:.3f} Gbps L1",
                        )
                    )
                    if line_gbps:
                        # NIC testbeds: the host link's own limit is its line rate (PERF-NET-1)
                        line = line_rate_pps(line_gbps, size)
                        res.figures.append(
                            Figure(
                                f"{sr.name.lower().replace('%', 'pct')}_vs_line_rate",
                                round(sr.rate_pps / line, 4),
                                "ratio",
                                {"path": name, "frame_size": str(size)},
                                reference={
                                    "name": f"{line_gbps:g} Gbps line rate",
                                    "mpps": round(line / 1e6, 4),
                                },
                            )
                        )
        res.details = {
            "packet_rate": {
                "paths": {n: {str(s): v for s, v in t.items()} for n, t in table.items()},
                "counters": counters,
                "ndr_pdr": ndr_out,
                "sizes": sizes,
                "rounds": rounds,
                "trial_s": trial_s,
                "flows": flows,
                "rate_basis": basis,
                "generator": gen.name,
                "conventions": {
                    "frame_size": "RFC 2544, incl. 4-byte FCS",
                    "gbps": "layer 1: (frame + 20 B preamble/SFD/IFG) x 8 x pps",
                },
            }
        }
        return res


def _key(basis: str) -> str:
    return "pps_per_core" if basis == "per_core" else "pps"


def _counters(gen: Any, desc: dict[str, Any]) -> dict[str, dict[str, int]]:
    try:
        route = gen.route(desc)
        c: dict[str, dict[str, int]] = route.counters()
        return c
    except Exception:
        return {}
