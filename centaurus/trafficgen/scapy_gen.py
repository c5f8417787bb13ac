"""``scapy``: functional and low-rate traffic -- any packet scapy can build (malformed ones
included), sent from inside a lab endpoint's namespace through an AF_PACKET socket, counted at
the receiving endpoint by an XDP sink (the receiver's count, never the sender's).

Rates are what a Python send loop manages (tens of kpps at best): use it to check that a path
carries what it should, at a rate where nothing may be lost, and leave packet rates to
``xdp-live`` and ``trex``. Paths: ``{"kind": "endpoint", "lab", "src", "dst"}``.
"""

from __future__ import annotations

import os
import time
from typing import Any

from centaurus.trafficgen.base import GeneratorUnavailable, Trial, TrialResult
from centaurus.trafficgen.frames import udp_frame

DPORT = 9  # discard: what the receiver counts (other frames arriving there are not ours)


class _Endpoints:
    def __init__(self, lab: Any, src: str, dst: str) -> None:
        import socket

        from centaurus.bpf import maps as M
        from centaurus.bpf.netns import in_netns
        from centaurus.labs import traffic
        from centaurus.trafficgen.xdp_live import Receiver

        self.s, self.r = lab.endpoint(src), lab.endpoint(dst)
        if traffic.ping(lab, src, self.r.ip, count=2, interval=0.05) == 0:
            raise RuntimeError(f"{src} cannot reach {dst} ({self.r.ip}): nothing to send over")
        kernel = getattr(lab.dataplane, "name", "") == "bridge-vxlan"
        self.dst_mac = self.r.mac if kernel else M.GW_MAC

        def open_socket() -> socket.socket:
            # created and bound inside the endpoint's namespace, which it keeps (scapy's own
            # L2Socket resolves interfaces in the caller's namespace, so it is not used here)
            sk = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
            sk.bind(("eth0", 0))
            return sk

        self.sock = in_netns(self.s.netns, open_socket)
        try:
            self.receiver = Receiver(self.r.netns, "eth0", udp_dport=DPORT)
        except BaseException:
            self.sock.close()
            raise

    def frame(self, size: int, sport: int) -> bytes:
        return udp_frame(size, self.s.mac, self.dst_mac, self.s.ip, self.r.ip, sport=sport, dport=DPORT)

    def close(self) -> None:
        self.receiver.close()
        self.sock.close()


class ScapyGenerator:
    """Options: ``max_pps`` (cap of the send loop, default 20000)."""

    name = "scapy"

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        self.max_pps = float((options or {}).get("max_pps", 20_000))
        self._paths: dict[tuple[Any, ...], _Endpoints] = {}

    def check(self) -> None:
        try:
            import scapy.config  # noqa: F401
        except ImportError as exc:
            raise GeneratorUnavailable(f"scapy is not importable: {exc}") from None
        if os.geteuid() != 0:
            raise GeneratorUnavailable("scapy needs root for AF_PACKET sockets in lab namespaces")

    def _ep(self, path: dict[str, Any]) -> _Endpoints:
        if path.get("kind") != "endpoint" or path.get("lab") is None:
            raise ValueError("scapy generator: paths are {'kind': 'endpoint', 'lab', 'src', 'dst'}")
        key = (id(path["lab"]), path["src"], path["dst"])
        if key not in self._paths:
            self._paths[key] = _Endpoints(path["lab"], str(path["src"]), str(path["dst"]))
        return self._paths[key]

    def send(self, path: dict[str, Any], packets: list[Any], settle_s: float = 0.2) -> int:
        """Send these frames (scapy packets or raw bytes, malformed ones welcome) from ``src``;
        return how many IPv4/UDP frames to port 9 arrived at ``dst``'s eth0."""
        ep = self._ep(path)
        before = ep.receiver.counts()[0]
        for p in packets:
            ep.sock.send(bytes(p))
        time.sleep(settle_s)
        return ep.receiver.counts()[0] - before

    def run_trial(self, path: dict[str, Any], trial: Trial) -> TrialResult:
        ep = self._ep(path)
        rate = min(trial.rate_pps or self.max_pps, self.max_pps)
        frames = [ep.frame(trial.frame_size, 40000 + i) for i in range(max(1, trial.flows))]
        total = max(1, int(rate * trial.duration_s))
        before = ep.receiver.counts()[0]
        t0 = time.perf_counter()
        for i in range(total):
            ep.sock.send(frames[i % len(frames)])
            ahead = t0 + (i + 1) / rate - time.perf_counter()
            if ahead > 0.001:
                time.sleep(ahead)
        wall = time.perf_counter() - t0
        time.sleep(0.1)
        got = ep.receiver.counts()[0] - before
        return TrialResult(
            total,
            got,
            wall,
            extra={"generator": self.name, "frame_size": trial.frame_size, "offered_pps": rate},
        )

    def close(self) -> None:
        for ep in self._paths.values():
            ep.close()
        self._paths.clear()
