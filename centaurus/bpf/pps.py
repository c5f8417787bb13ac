"""Packet-rate measurement with BPF_PROG_RUN live frames (``trafficgen.o``).

Pieces anyone can reuse (the lab-level figure, the Perf campaign):

- :class:`LiveGenerator` -- ``tg_gen`` run with ``BPF_F_TEST_XDP_LIVE_FRAMES``: every test
  frame is redirected into one veth (in any netns), ``packets`` times, from a thread pinned
  to one CPU. The veth's peer needs an XDP program (or GRO), else frames vanish silently.
- :class:`Sink` -- ``tg_sink`` (count, drop) or ``tg_pass`` (count, pass) on a veth: the
  receiver, where every figure is counted (never the sender's tally).
- :class:`Forwarder` -- ``tg_forward``: a plain XDP_REDIRECT hop (ingress -> egress veth),
  the floor any veth overlay with the same number of hops can reach.
- :func:`measure` -- offer frames for about ``seconds``, ``trials`` times, and report what
  arrived per second.

One core does everything here: the generator's syscall and every veth hop's NAPI run on the
pinned CPU, so a path's rate is 1 / (sum of per-hop costs). Throwaway topologies and the
overlay-vs-plain comparison live in :mod:`centaurus.bpf.ppslab`.
"""

from __future__ import annotations

import ctypes
import os
import socket
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from centaurus.bpf import xdp
from centaurus.bpf.netns import in_netns
from centaurus.bpf.obj import BpfObject, object_path
from centaurus.bpf.testrun import prog_test_run

TG_RX_PACKETS, TG_RX_BYTES = 0, 1


def _ifindex(netns: str | None, ifname: str) -> int:
    return in_netns(netns, lambda: socket.if_nametoindex(ifname))


class LiveGenerator:
    """Sends frames into ``ifname`` (in ``netns``) as fast as one CPU can."""

    def __init__(self, netns: str | None, ifname: str) -> None:
        self.netns, self.ifname = netns, ifname
        self.obj = BpfObject(object_path("trafficgen"))
        self.fd = self.obj.program("tg_gen").fd
        port = self.obj.map("tg_port")
        ifi = _ifindex(netns, ifname)
        in_netns(netns, lambda: port.update(0, ifi))

    def send(self, frame: bytes, packets: int, *, batch_size: int = 64, cpu: int | None = None) -> float:
        """Offer ``packets`` copies of ``frame``; returns the seconds the syscall took."""
        out: list[float] = []
        err: list[BaseException] = []

        def run() -> None:
            try:
                if cpu is not None:
                    os.sched_setaffinity(0, {cpu})  # this thread only
                t0 = time.perf_counter()
                prog_test_run(self.fd, frame, repeat=packets, live=True, batch_size=batch_size)
                out.append(time.perf_counter() - t0)
            except BaseException as e:
                err.append(e)

        t = threading.Thread(target=run, name="live-gen")
        t.start()
        t.join()
        if err:
            raise err[0]
        return out[0]

    def close(self) -> None:
        self.obj.close()


class Sink:
    """Counts what arrives on ``ifname`` (XDP_DROP after counting, or XDP_PASS)."""

    def __init__(self, netns: str | None, ifname: str, *, mode: str = "drop") -> None:
        self.netns, self.ifname = netns, ifname
        self.obj = BpfObject(object_path("trafficgen"))
        self.rx = self.obj.map("tg_rx")
        prog = self.obj.program("tg_sink" if mode == "drop" else "tg_pass")
        xdp.attach(ifname, prog.fd, netns=netns)

    def packets(self) -> int:
        return self.rx.sum_percpu(TG_RX_PACKETS)

    def bytes(self) -> int:
        return self.rx.sum_percpu(TG_RX_BYTES)

    def close(self) -> None:
        xdp.detach(self.ifname, netns=self.netns)
        self.obj.close()


class Forwarder:
    """Plain XDP_REDIRECT hops inside one netns: frames entering ``src`` leave by ``dst``.
    ``mode`` ``push``/``pop`` also pushes/pops a fixed 66-byte Geneve header (``header``):
    the encapsulation floor without any lookup."""

    def __init__(self, netns: str | None, pairs: dict[str, str], *, attach: bool = True,
                 mode: str = "forward", header: bytes = b"") -> None:
        self.netns = netns
        self.obj = BpfObject(object_path("trafficgen"))
        chain = self.obj.map("tg_chain")
        self.fd = self.obj.program({"forward": "tg_forward", "push": "tg_push", "pop": "tg_pop"}[mode]).fd
        if mode == "push":
            hdr = self.obj.map("tg_hdr")
            buf = (ctypes.c_uint8 * hdr.value_size).from_buffer_copy(header.ljust(hdr.value_size, b"\0"))
            hdr.update(0, buf)

        def setup() -> None:
            for src, dst in pairs.items():
                chain.update(socket.if_nametoindex(src), socket.if_nametoindex(dst))

        in_netns(netns, setup)
        self.ports = list(pairs)
        if attach:
            self.attach()

    def attach(self) -> None:
        for src in self.ports:
            xdp.attach(src, self.fd, netns=self.netns)

    def detach(self) -> None:
        for src in self.ports:
            xdp.detach(src, netns=self.netns)

    def close(self) -> None:
        self.detach()
        self.obj.close()


@dataclass
class RateResult:
    """What one path achieved: median over trials of received packets per second."""

    name: str
    hops: int
    trials_pps: list[float] = field(default_factory=list)
    sent: int = 0
    received: int = 0

    @property
    def pps(self) -> float:
        return statistics.median(self.trials_pps) if self.trials_pps else 0.0

    @property
    def best_pps(self) -> float:
        """Best trial: on a shared machine other load only ever lowers a rate."""
        return max(self.trials_pps) if self.trials_pps else 0.0

    @property
    def loss(self) -> float:
        return 0.0 if not self.sent else max(0.0, 1 - self.received / self.sent)

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(pps=self.pps, mpps=round(self.pps / 1e6, 3), best_mpps=round(self.best_pps / 1e6, 3),
                 loss=round(self.loss, 4))
        return d


def trial(res: RateResult, gen: LiveGenerator, received: Callable[[], int], frame: bytes, *,
          seconds: float = 1.0, cpu: int | None = 0, batch_size: int = 64,
          warmup_packets: int = 100_000) -> float:
    """One trial added to ``res``: a short warm-up sizes the run to last about ``seconds``;
    the rate is the receiver's count over the generator's wall time."""
    before = received()
    took = gen.send(frame, warmup_packets, cpu=cpu, batch_size=batch_size)
    time.sleep(0.02)
    rate = max(received() - before, 1) / max(took, 1e-6)
    packets = max(10_000, min(int(rate * seconds), 50_000_000))
    before = received()
    took = gen.send(frame, packets, cpu=cpu, batch_size=batch_size)
    time.sleep(0.02)  # let the last NAPI polls finish (they count, the time barely moves)
    got = received() - before
    res.trials_pps.append(got / took)
    res.sent += packets
    res.received += got
    return got / took


def measure(name: str, hops: int, gen: LiveGenerator, received: Callable[[], int], frame: bytes, *,
            seconds: float = 1.0, trials: int = 3, cpu: int | None = 0, batch_size: int = 64) -> RateResult:
    """``trials`` trials of one path; the result's ``pps`` is their median."""
    res = RateResult(name, hops)
    for _ in range(trials):
        trial(res, gen, received, frame, seconds=seconds, cpu=cpu, batch_size=batch_size)
    return res
