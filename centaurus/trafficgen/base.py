"""Traffic generators behind one interface, so an NDR search does not care what sends.

``xdp-live`` drives ``BPF_PROG_RUN`` with live frames on this machine, ``scapy`` sends
functional and malformed packets at low rate, ``trex`` drives a TRex server on a NIC testbed.
Received counts always come from the receiving side, never from the sender's own tally.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


@dataclass
class Trial:
    frame_size: int = 64
    rate_pps: float = 0.0  # 0 = as fast as the generator can
    duration_s: float = 2.0
    flows: int = 1


@dataclass
class TrialResult:
    tx_packets: int
    rx_packets: int
    duration_s: float
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def loss_ratio(self) -> float:
        return 0.0 if self.tx_packets == 0 else max(0.0, 1 - self.rx_packets / self.tx_packets)

    @property
    def rx_pps(self) -> float:
        return self.rx_packets / self.duration_s if self.duration_s else 0.0


class GeneratorUnavailable(RuntimeError):
    """The generator cannot run here (e.g. no TRex server configured): report not-verified."""


@runtime_checkable
class TrafficGen(Protocol):
    name: str

    def check(self) -> None:
        """Raise :class:`GeneratorUnavailable` with the reason when this generator cannot run."""

    def run_trial(self, path: Any, trial: Trial) -> TrialResult:
        """Offer ``trial`` on ``path`` (generator-specific description of where to send and
        where to count) and return what was sent and what arrived."""
