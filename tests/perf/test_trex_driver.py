"""The TRex driver's logic against a fake STL client (the boundary is ``TrexSession(client, api)``):
the call sequence of a trial, counters read from the right ports, latency parsing, path and
config resolution. The real server is exercised by test_trex_live.py when one is configured."""

from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace
from typing import Any

import pytest

from centaurus.trafficgen import trex
from centaurus.trafficgen.base import GeneratorUnavailable, Trial
from centaurus.trafficgen.trex_worker import handle


class Obj:
    def __init__(self, kind: str, **kw: Any) -> None:
        self.kind, self.kw = kind, kw


class FakeVM:
    def __init__(self) -> None:
        self.ops: list[tuple[str, dict[str, Any]]] = []

    def var(self, **kw: Any) -> None:
        self.ops.append(("var", kw))

    def write(self, **kw: Any) -> None:
        self.ops.append(("write", kw))


API = SimpleNamespace(
    STLVM=FakeVM,
    STLPktBuilder=lambda **kw: Obj("pkt", **kw),
    STLStream=lambda **kw: Obj("stream", **kw),
    STLTXCont=lambda **kw: Obj("cont", **kw),
    STLFlowStats=lambda **kw: Obj("flow", **kw),
    STLFlowLatencyStats=lambda **kw: Obj("latency", **kw),
)


class FakeClient:
    """Records calls; forwards ``capacity`` of what the data stream offers."""

    def __init__(self, capacity: float = 1.0, flow_stats: bool = True) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.capacity, self.flow_stats = capacity, flow_stats
        self.streams: list[Obj] = []

    def reset(self, ports: Any = None) -> None:
        self.calls.append(("reset", ports))

    def add_streams(self, streams: list[Obj], ports: Any = None) -> None:
        self.streams = streams
        self.calls.append(("add_streams", ports))

    def clear_stats(self) -> None:
        self.calls.append(("clear_stats", None))

    def start(self, ports: Any = None, mult: str = "1", duration: float = -1, force: bool = False) -> None:
        self.calls.append(("start", (ports, mult, duration, force)))

    def wait_on_traffic(self, ports: Any = None, rx_delay_ms: int | None = None) -> None:
        self.calls.append(("wait", (ports, rx_delay_ms)))

    def get_stats(self) -> dict[Any, Any]:
        mode = self.streams[0].kw["mode"].kw
        sent = int(mode.get("pps", 10_000_000) * 2.0)
        got = int(sent * self.capacity)
        st: dict[Any, Any] = {
            0: {"opackets": sent + 2000, "obytes": 1, "oerrors": 0},
            1: {"ipackets": got + 2000 + 7, "ibytes": 1, "ierrors": 0},
        }
        if self.flow_stats:
            st["flow_stats"] = {trex.PG_DATA: {"tx_pkts": {0: sent, 1: 0}, "rx_pkts": {0: 0, 1: got}}}
        st["latency"] = {
            trex.PG_LATENCY: {
                "latency": {
                    "average": 12.5,
                    "total_min": 8,
                    "total_max": 40,
                    "jitter": 2,
                    "histogram": {10: 1500, 20: 500},
                },
                "err_cntrs": {"dropped": 3, "seq_too_high": 0},
            }
        }
        return st

    def get_all_ports(self) -> list[int]:
        return [0, 1]


FRAME = bytes(60)


def test_trial_sequence_rates_and_receiver_counts() -> None:
    c = FakeClient(capacity=0.9)
    out = trex.TrexSession(c, API).trial(
        tx=0, rx=1, frame=FRAME, rate_pps=500_000, duration_s=2.0, flows=4, latency_pps=1000
    )
    assert [k for k, _ in c.calls] == ["reset", "add_streams", "clear_stats", "start", "wait"]
    assert c.calls[0][1] == [0, 1] and c.calls[1][1] == [0]
    assert c.calls[3][1] == ([0], "1", 2.0, True)  # absolute stream rates, multiplier 1
    data, lat = c.streams
    assert data.kw["mode"].kw == {"pps": 500_000} and data.kw["flow_stats"].kind == "flow"
    assert lat.kw["mode"].kw == {"pps": 1000} and lat.kw["flow_stats"].kind == "latency"
    vm = data.kw["packet"].kw["vm"]
    assert ("write", {"fv_name": "sport", "pkt_offset": 34}) in vm.ops
    assert vm.ops[0][1]["min_value"] == 40000 and vm.ops[0][1]["max_value"] == 40003
    assert out["tx"] == 1_000_000 and out["rx"] == 900_000 and out["counted_by"] == "flow_stats"
    assert out["latency_us"]["average"] == 12.5 and out["latency_us"]["max"] == 40
    assert out["latency_errors"] == {"dropped": 3}


def test_line_rate_trial_uses_100_percent_and_single_flow_has_no_field_engine() -> None:
    c = FakeClient()
    trex.TrexSession(c, API).trial(tx=2, rx=3, frame=FRAME, rate_pps=0, duration_s=1.0)
    data = c.streams[0]
    assert data.kw["mode"].kw == {"percentage": 100}
    assert "vm" not in data.kw["packet"].kw
    assert len(c.streams) == 1  # no latency stream asked for


def test_port_counters_are_the_fallback_without_flow_statistics() -> None:
    c = FakeClient(flow_stats=False)
    st = c.get_stats.__func__  # type: ignore[attr-defined]
    c.streams = [Obj("stream", mode=Obj("cont", pps=100))]
    out = trex.parse_stats(st(c), 0, 1, 2.0, "1")
    assert out["counted_by"] == "port counters"
    assert out["tx"] == 2200 and out["rx"] == 2207


def test_config_comes_from_file_and_environment(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "trex.yaml"
    cfg.write_text(
        "server: tg1\nports: {tx: 2, rx: 3}\nframe: {dst_ip: 10.0.0.9}\n"
        "paths:\n  'endpoint:a2->a4': {tx: 0, rx: 1, dst_mac: '02:aa:bb:cc:dd:ee'}\n"
    )
    monkeypatch.setenv("CENTAURUS_TREX_CONFIG", str(cfg))
    monkeypatch.delenv("CENTAURUS_TREX_SERVER", raising=False)
    c = trex.load_config()
    assert c["server"] == "tg1"
    p = trex.resolve_path(c, {"kind": "endpoint", "src": "a2", "dst": "a4"})
    assert (p["tx"], p["rx"]) == (0, 1) and p["frame"]["dst_mac"] == "02:aa:bb:cc:dd:ee"
    assert p["frame"]["dst_ip"] == "10.0.0.9"
    assert trex.resolve_path(c, {"kind": "ports", "tx": 5})["tx"] == 5
    with pytest.raises(ValueError, match="names no path"):
        trex.resolve_path(c, {"kind": "endpoint", "src": "x", "dst": "y"})
    monkeypatch.setenv("CENTAURUS_TREX_SERVER", "tg2")
    assert trex.load_config()["server"] == "tg2"


def test_no_server_configured_is_generator_unavailable(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CENTAURUS_TREX_CONFIG", str(tmp_path / "absent.yaml"))
    monkeypatch.delenv("CENTAURUS_TREX_SERVER", raising=False)
    with pytest.raises(GeneratorUnavailable, match="no TRex server configured"):
        trex.TrexGenerator({}).check()
    bad = tmp_path / "bad.yaml"
    bad.write_text("server: [\n")
    with pytest.raises(GeneratorUnavailable, match="not valid YAML"):
        trex.TrexGenerator({"config": str(bad)}).check()


def test_worker_protocol_over_a_fake_session() -> None:
    s = trex.TrexSession(FakeClient(capacity=0.5), API)
    assert handle(s, {"op": "info"})["ports"] == [0, 1]
    r = handle(
        s, {"op": "trial", "tx": 0, "rx": 1, "frame_hex": FRAME.hex(), "rate_pps": 1000, "duration_s": 2.0}
    )
    assert r["ok"] and r["tx"] == 2000 and r["rx"] == 1000
    assert handle(s, {"op": "nope"}) == {"ok": False, "error": "unknown op 'nope'"}


def test_worker_process_reports_an_unreachable_server_as_an_error_line() -> None:
    """The real worker, the real client library, a port where nothing listens: one JSON error
    line, not a hang and not a traceback."""
    p = subprocess.run(
        [
            sys.executable,
            "-m",
            "centaurus.trafficgen.trex_worker",
            json.dumps({"server": "127.0.0.1", "sync_port": 1, "async_port": 2}),
        ],
        input=json.dumps({"op": "info"}) + "\n",
        capture_output=True,
        text=True,
        timeout=60,
    )
    resp = json.loads(p.stdout.splitlines()[0])
    assert resp["ok"] is False and resp["error"]


def test_generator_maps_a_worker_answer_to_a_trial_result(monkeypatch: pytest.MonkeyPatch) -> None:
    g = trex.TrexGenerator({"server": "x"})
    g.cfg = {"server": "x", "latency": {"enabled": False}}
    seen: list[dict[str, Any]] = []

    def call(req: dict[str, Any]) -> dict[str, Any]:
        seen.append(req)
        return {"ok": True, "tx": 1000, "rx": 990, "duration_s": 1.0, "counted_by": "flow_stats"}

    monkeypatch.setattr(g, "_call", call)
    r = g.run_trial({"kind": "ports", "tx": 0, "rx": 1}, Trial(128, 0.0, 1.0, 2))
    assert r.loss_ratio == pytest.approx(0.01) and r.extra["counted_by"] == "flow_stats"
    assert len(bytes.fromhex(seen[0]["frame_hex"])) == 124 and seen[0]["latency_pps"] == 0.0
