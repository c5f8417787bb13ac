"""``trex``: a TRex server on a NIC testbed, driven through its stateless (STL) Python API.

The client library is ``lbr-trex-client`` (the packaged TRex v3 interactive client:
``import lbr_trex_client`` then ``from trex.stl.api import STLClient, ...``). It swaps in its
own bundled scapy 2.4.3 when imported, which breaks any process that already uses the current
scapy (as this project does) -- so the STL calls run in a worker process
(``python -m centaurus.trafficgen.trex_worker``) that speaks JSON lines on stdin/stdout, and the
logic of a trial lives in :class:`TrexSession`, which takes the STL client and API as arguments
(unit tests hand it fakes; the worker hands it the real ones).

A trial: reset the ports, add a continuous stream of the test frame (source port varied over
``flows`` flows by the field engine) with per-stream flow statistics, plus a low-rate latency
stream (``STLFlowLatencyStats``), clear the statistics, start (each stream at its own absolute
rate, multiplier 1; the data stream at ``rate_pps``, or 100 % of line rate for ``rate_pps ==
0``) for the trial's duration, wait (with an rx
delay for frames in flight), and read the counters: transmitted from the TX port's flow
statistics, received from the RX port's -- what the far end really got.

Configuration (``options["config"]``, else ``$CENTAURUS_TREX_CONFIG``, else
``~/.centaurus/trex.yaml``; ``$CENTAURUS_TREX_SERVER`` overrides the server)::

    server: trex1.lab.example     # TRex started with `t-rex-64 -i` (interactive)
    sync_port: 4501
    async_port: 4500
    ports: {tx: 0, rx: 1}         # default port pair
    line_rate_gbps: 10            # reported beside the figures
    frame: {src_mac: ..., dst_mac: ..., src_ip: 16.0.0.1, dst_ip: 48.0.0.1}
    latency: {enabled: true, pps: 1000}
    paths:                        # optional: a lab path -> its ports and addresses
      "endpoint:a2->a4": {tx: 0, rx: 1, dst_mac: "...", src_ip: ..., dst_ip: ...}
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from centaurus.trafficgen.base import GeneratorUnavailable, Trial, TrialResult
from centaurus.trafficgen.frames import udp_frame

DEFAULT_FRAME = {
    "src_mac": "02:00:00:00:00:01",
    "dst_mac": "02:00:00:00:00:02",
    "src_ip": "16.0.0.1",
    "dst_ip": "48.0.0.1",
}
SPORT_OFFSET = 14 + 20  # UDP source port in an Ethernet/IPv4(no options)/UDP frame
PG_DATA, PG_LATENCY = 7, 8


class TrexError(RuntimeError):
    """The TRex server or client reported an error (one line)."""


def load_config(options: dict[str, Any] | None = None) -> dict[str, Any]:
    """The testbed configuration; ``{}`` plus whatever the environment says when no file."""
    o = options or {}
    path = (
        o.get("config") or os.environ.get("CENTAURUS_TREX_CONFIG") or Path.home() / ".centaurus" / "trex.yaml"
    )
    cfg: dict[str, Any] = {}
    p = Path(path)
    if p.exists():
        try:
            doc = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as exc:
            raise GeneratorUnavailable(f"{p}: not valid YAML: {str(exc).splitlines()[0]}") from None
        if not isinstance(doc, dict):
            raise GeneratorUnavailable(f"{p}: expected a mapping")
        cfg = doc
        cfg["_file"] = str(p)
    elif o.get("config"):
        raise GeneratorUnavailable(f"TRex config {p} does not exist")
    for k in ("server", "sync_port", "async_port"):
        if k in o:
            cfg[k] = o[k]
    if os.environ.get("CENTAURUS_TREX_SERVER"):
        cfg["server"] = os.environ["CENTAURUS_TREX_SERVER"]
    return cfg


def resolve_path(cfg: dict[str, Any], path: dict[str, Any]) -> dict[str, Any]:
    """Ports and frame addresses for a path: ``{"kind": "ports", "tx", "rx"}`` directly, or a lab
    path (``kind``, ``src``, ``dst``) looked up under ``paths`` as ``"<kind>:<src>-><dst>"``."""
    ports: dict[str, Any] = dict(cfg.get("ports") or {"tx": 0, "rx": 1})
    frame = {**DEFAULT_FRAME, **(cfg.get("frame") or {})}
    if path.get("kind") == "ports":
        entry: dict[str, Any] = {k: path[k] for k in ("tx", "rx") if k in path}
    else:
        key = f"{path.get('kind')}:{path.get('src')}->{path.get('dst')}"
        entry = dict((cfg.get("paths") or {}).get(key) or {})
        if not entry and cfg.get("paths"):
            raise ValueError(
                f"TRex config {cfg.get('_file', '')} names no path {key!r} (has {sorted(cfg['paths'])})"
            )
    tx, rx = int(entry.get("tx", ports.get("tx") or 0)), int(entry.get("rx", ports.get("rx") or 1))
    frame.update({k: v for k, v in entry.items() if k in DEFAULT_FRAME})
    return {"tx": tx, "rx": rx, "frame": frame}


class TrexSession:
    """One connected STL client and the trial procedure (pure logic over ``client`` and ``api``:
    an object with STLStream, STLPktBuilder, STLTXCont, STLVM, STLFlowStats,
    STLFlowLatencyStats, as ``trex.stl.api`` provides)."""

    def __init__(self, client: Any, api: Any) -> None:
        self.c, self.api = client, api

    def info(self) -> dict[str, Any]:
        ports = list(range(len(self.c.get_all_ports()))) if hasattr(self.c, "get_all_ports") else []
        return {"ports": ports, "server_version": str(getattr(self.c, "get_server_version", dict)() or "")}

    def _stream(self, frame: bytes, flows: int, sport: int, mode: Any, flow_stats: Any) -> Any:
        a = self.api
        vm = None
        if flows > 1:
            vm = a.STLVM()
            vm.var(name="sport", min_value=sport, max_value=sport + flows - 1, size=2, op="inc")
            vm.write(fv_name="sport", pkt_offset=SPORT_OFFSET)
        pkt = (
            a.STLPktBuilder(pkt_buffer=frame, vm=vm) if vm is not None else a.STLPktBuilder(pkt_buffer=frame)
        )
        return a.STLStream(packet=pkt, mode=mode, flow_stats=flow_stats)

    def trial(
        self,
        *,
        tx: int,
        rx: int,
        frame: bytes,
        rate_pps: float,
        duration_s: float,
        flows: int = 1,
        latency_pps: float = 0.0,
        sport: int = 40000,
        rx_delay_ms: int = 200,
    ) -> dict[str, Any]:
        a, c = self.api, self.c
        c.reset(ports=[tx, rx])
        # absolute rates per stream and multiplier 1: a "<n>pps" multiplier would scale the latency
        # stream along with the data stream
        mode = a.STLTXCont(pps=rate_pps) if rate_pps > 0 else a.STLTXCont(percentage=100)
        streams = [self._stream(frame, flows, sport, mode, a.STLFlowStats(pg_id=PG_DATA))]
        if latency_pps > 0:
            streams.append(
                self._stream(
                    frame, 1, sport, a.STLTXCont(pps=latency_pps), a.STLFlowLatencyStats(pg_id=PG_LATENCY)
                )
            )
        c.add_streams(streams, ports=[tx])
        c.clear_stats()
        mult = "1"
        c.start(ports=[tx], mult=mult, duration=duration_s, force=True)
        c.wait_on_traffic(ports=[tx], rx_delay_ms=rx_delay_ms)
        st = c.get_stats()
        return parse_stats(st, tx, rx, duration_s, mult)


def _port(d: dict[Any, Any], port: int, default: Any = None) -> Any:
    """``d[port]`` whether the server keyed it by int or by str."""
    v = d.get(port, d.get(str(port)))
    return ({} if default is None else default) if v is None else v


def parse_stats(st: dict[Any, Any], tx: int, rx: int, duration_s: float, mult: str) -> dict[str, Any]:
    """Counters of a finished trial from ``STLClient.get_stats()``: data-stream packets sent on
    ``tx`` and received on ``rx`` (flow statistics; port counters when those are absent), the
    port counters beside them, and the latency stream's figures (microseconds)."""
    fs = (st.get("flow_stats") or {}).get(PG_DATA) or (st.get("flow_stats") or {}).get(str(PG_DATA))
    if fs:
        sent, got = int(_port(fs.get("tx_pkts", {}), tx, 0)), int(_port(fs.get("rx_pkts", {}), rx, 0))
        source = "flow_stats"
    else:
        sent, got = int(_port(st, tx).get("opackets", 0)), int(_port(st, rx).get("ipackets", 0))
        source = "port counters"
    out: dict[str, Any] = {
        "tx": sent,
        "rx": got,
        "duration_s": duration_s,
        "mult": mult,
        "counted_by": source,
        "port_tx": {k: _port(st, tx).get(k) for k in ("opackets", "obytes", "oerrors")},
        "port_rx": {k: _port(st, rx).get(k) for k in ("ipackets", "ibytes", "ierrors")},
    }
    lat = (st.get("latency") or {}).get(PG_LATENCY) or (st.get("latency") or {}).get(str(PG_LATENCY))
    if lat:
        lt, err = lat.get("latency") or {}, lat.get("err_cntrs") or {}
        out["latency_us"] = {
            "average": lt.get("average"),
            "min": lt.get("total_min"),
            "max": lt.get("total_max"),
            "jitter": lt.get("jitter"),
            "histogram": lt.get("histogram") or {},
        }
        out["latency_errors"] = {k: v for k, v in err.items() if v}
    return out


class TrexGenerator:
    """TrafficGen over a TRex server (see the module docstring for the configuration)."""

    name = "trex"

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        self.options = dict(options or {})
        self.cfg: dict[str, Any] | None = None
        self._worker: subprocess.Popen[str] | None = None

    def _config(self) -> dict[str, Any]:
        if self.cfg is None:
            self.cfg = load_config(self.options)
        return self.cfg

    def check(self) -> None:
        cfg = self._config()
        if not cfg.get("server"):
            raise GeneratorUnavailable(
                "no TRex server configured (set CENTAURUS_TREX_SERVER or write "
                "~/.centaurus/trex.yaml / $CENTAURUS_TREX_CONFIG with `server:`)"
            )
        try:
            info = self._call({"op": "info"})
        except TrexError as exc:
            raise GeneratorUnavailable(f"TRex server {cfg['server']} not usable: {exc}") from None
        cfg["_info"] = info

    def _start_worker(self) -> subprocess.Popen[str]:
        if self._worker is None or self._worker.poll() is not None:
            cfg = self._config()
            args = {k: cfg.get(k) for k in ("server", "sync_port", "async_port") if cfg.get(k) is not None}
            self._worker = subprocess.Popen(
                [sys.executable, "-m", "centaurus.trafficgen.trex_worker", json.dumps(args)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
        return self._worker

    def _call(self, req: dict[str, Any]) -> dict[str, Any]:
        w = self._start_worker()
        assert w.stdin is not None and w.stdout is not None
        try:
            w.stdin.write(json.dumps(req) + "\n")
            w.stdin.flush()
            line = w.stdout.readline()
        except (BrokenPipeError, OSError) as exc:
            raise TrexError(f"TRex worker died: {exc}") from None
        if not line:
            raise TrexError(f"TRex worker exited (code {w.poll()})")
        resp: dict[str, Any] = json.loads(line)
        if not resp.get("ok"):
            raise TrexError(str(resp.get("error", "unknown error")))
        return resp

    def run_trial(self, path: dict[str, Any], trial: Trial) -> TrialResult:
        cfg = self._config()
        where = resolve_path(cfg, path)
        f = where["frame"]
        frame = udp_frame(trial.frame_size, f["src_mac"], f["dst_mac"], f["src_ip"], f["dst_ip"])
        lat = cfg.get("latency") or {}
        resp = self._call(
            {
                "op": "trial",
                "tx": where["tx"],
                "rx": where["rx"],
                "frame_hex": frame.hex(),
                "rate_pps": trial.rate_pps,
                "duration_s": trial.duration_s,
                "flows": trial.flows,
                "latency_pps": float(lat.get("pps", 1000)) if lat.get("enabled", True) else 0.0,
            }
        )
        extra = {k: v for k, v in resp.items() if k not in ("ok", "tx", "rx", "duration_s")}
        extra.update(
            frame_size=trial.frame_size,
            generator=self.name,
            server=cfg.get("server"),
            line_rate_gbps=cfg.get("line_rate_gbps"),
        )
        return TrialResult(int(resp["tx"]), int(resp["rx"]), float(resp["duration_s"]), extra=extra)

    def close(self) -> None:
        w, self._worker = self._worker, None
        if w is None:
            return
        try:
            if w.poll() is None and w.stdin is not None:
                w.stdin.write(json.dumps({"op": "close"}) + "\n")
                w.stdin.flush()
            w.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            w.kill()
            w.wait(timeout=5)
