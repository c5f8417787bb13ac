"""RFC 2544 frame conventions and the NDR/PDR search, against fake paths whose capacity is known."""

from __future__ import annotations

import socket
import struct

import pytest

from centaurus.perf.ndr import NDR, PDR, SearchConfig, Searcher
from centaurus.trafficgen.base import TrialResult
from centaurus.trafficgen.frames import RFC2544_SIZES, ipv4_checksum, l1_gbps, line_rate_pps, udp_frame


@pytest.mark.parametrize("size", RFC2544_SIZES)
def test_udp_frame_has_the_rfc2544_size_without_fcs_and_a_valid_ip_header(size: int) -> None:
    f = udp_frame(size, "02:00:00:00:00:01", "02:00:00:00:00:02", "10.0.0.1", "10.0.0.2", sport=1234)
    assert len(f) == size - 4
    ip = f[14:34]
    assert ipv4_checksum(ip) == 0  # checksum over a header including its checksum field
    assert struct.unpack("!H", ip[2:4])[0] == size - 4 - 14
    assert ip[12:16] == socket.inet_aton("10.0.0.1")
    assert struct.unpack("!HHHH", f[34:42]) == (1234, 9, size - 4 - 34, 0)


def test_frame_sizes_out_of_range_are_refused() -> None:
    with pytest.raises(ValueError, match="out of range"):
        udp_frame(60, "02:00:00:00:00:01", "02:00:00:00:00:02", "10.0.0.1", "10.0.0.2")


def test_layer1_convention_makes_64_byte_line_rate_10g() -> None:
    assert round(line_rate_pps(10, 64)) == 14_880_952
    assert l1_gbps(14_880_952.38, 64) == pytest.approx(10.0, rel=1e-6)
    assert l1_gbps(812_743.8, 1518) == pytest.approx(10.0, rel=1e-5)


class OpenLoopPath:
    """Forwards up to ``capacity`` pps and drops the rest; ``max_rate`` is what rate 0 offers."""

    def __init__(self, capacity: float, max_rate: float, leak: float = 0.0) -> None:
        self.capacity, self.max_rate, self.leak, self.calls = capacity, max_rate, leak, []

    def __call__(self, rate: float) -> TrialResult:
        self.calls.append(rate)
        offered = rate or self.max_rate
        got = min(offered, self.capacity) * (1 - self.leak)
        return TrialResult(int(offered), int(got), 1.0)


def test_search_bisects_an_open_loop_path_to_its_capacity() -> None:
    path = OpenLoopPath(capacity=6e6, max_rate=14.88e6)
    cfg = SearchConfig(trial_s=1, resolution=0.01, max_iterations=20)
    ndr, pdr = Searcher(path, 64, cfg).run()
    assert ndr.loss_threshold == NDR and pdr.loss_threshold == PDR
    assert ndr.method == "binary search"
    assert 6e6 * 0.98 <= ndr.rate_pps <= 6e6
    assert pdr.rate_pps >= ndr.rate_pps
    assert ndr.iterations <= 21
    assert all(t.loss == 0 for t in ndr.trials if t.offered_pps and t.offered_pps <= 6e6)


def test_pdr_accepts_half_a_percent_of_loss_that_ndr_refuses() -> None:
    path = OpenLoopPath(capacity=1e9, max_rate=1e6, leak=0.003)  # loses 0.3 % at every rate
    ndr, pdr = Searcher(path, 64, SearchConfig(max_iterations=5)).run()
    assert pdr.method == "max-rate trial passed" and pdr.rate_pps == pytest.approx(997_000)
    assert ndr.rate_pps == 0 and ndr.method == "no passing rate"


def test_closed_loop_generator_passing_the_max_rate_trial_ends_the_search() -> None:
    path = OpenLoopPath(capacity=1e9, max_rate=3e6)
    first = TrialResult(3_000_000, 3_000_000, 1.0)
    s = Searcher(path, 64, SearchConfig(), first=first)
    ndr, _pdr = s.run()
    assert path.calls == []  # the seeded trial decided it
    assert ndr.rate_pps == 3e6 and ndr.method == "max-rate trial passed" and ndr.iterations == 1


def test_iterations_are_bounded_and_trials_shared_between_thresholds() -> None:
    path = OpenLoopPath(capacity=5e6, max_rate=10e6)
    cfg = SearchConfig(resolution=0.0001, max_iterations=4)
    s = Searcher(path, 64, cfg)
    ndr, pdr = s.run()
    assert ndr.iterations == 5 and pdr.iterations == 5
    assert len(path.calls) == len(set(path.calls))  # no rate was tried twice
    assert ndr.rate_pps <= 5e6


def test_search_settings_are_validated() -> None:
    with pytest.raises(ValueError):
        SearchConfig.from_params({"resolution": 2})
    with pytest.raises(ValueError):
        SearchConfig.from_params({"losses": [1.5]})
    assert SearchConfig.from_params({"trial_s": 0.5, "max_iterations": 3}).max_iterations == 3
