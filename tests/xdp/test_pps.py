"""The packet-rate harness itself (centaurus.bpf.pps / ppslab) in throwaway namespaces: the
live-frames generator reaches the receiver through every hop of each shape, the receiver's
count is what is reported, and the overlay really takes the path it claims (its counters).
No timing is asserted here: rates are for benchmarks, not pass/fail."""

from __future__ import annotations

import pytest

from centaurus.bpf import ppslab as P
from centaurus.bpf.pps import LiveGenerator, RateResult, trial

N = 20_000


@pytest.mark.parametrize("hops", [1, 3, 4])
def test_plain_chain_delivers_every_frame_to_the_receiver(hops: int) -> None:
    chain = P.Chain(hops)
    gen = None
    try:
        gen = LiveGenerator(chain.ns[0], "out")
        with P.plain_chain(chain) as sink:
            before = sink.packets()
            gen.send(P.frame64(chain.mac(0, "out")), N, cpu=0)
            assert sink.packets() - before >= N * 0.99
    finally:
        if gen:
            gen.close()
        chain.delete()


@pytest.mark.parametrize("via_bouncer", [False, True])
def test_overlay_chain_takes_the_path_it_measures(via_bouncer: bool) -> None:
    chain = P.Chain(4 if via_bouncer else 3)
    gen = None
    try:
        gen = LiveGenerator(chain.ns[0], "out")
        with P.overlay_chain(chain, via_bouncer=via_bouncer) as (sink, ovs):
            res = RateResult("x", chain.hops)
            trial(res, gen, sink.packets, P.frame64(chain.mac(0, "out")), seconds=0.05, cpu=0)
            got = res.received
            assert got >= res.sent * 0.99 and res.trials_pps[0] > 0
            first, last = ovs[0].stats(), ovs[-1].stats()
            assert first["via_bouncer" if via_bouncer else "direct"] >= got
            assert last["rx_decap"] >= got
            if via_bouncer:
                assert ovs[1].stats()["bounced"] >= got
            for ov in ovs:
                assert not {k: v for k, v in ov.stats().items() if k.startswith("drop_") and
                            k not in ("drop_unsupported",) and v}, "no drops on the measured path"
    finally:
        if gen:
            gen.close()
        chain.delete()


def test_geneve_floor_chain_pushes_and_pops() -> None:
    chain = P.Chain(3)
    gen = None
    try:
        gen = LiveGenerator(chain.ns[0], "out")
        with P.plain_chain(chain, geneve=True) as sink:
            before, nbytes = sink.packets(), sink.bytes()
            gen.send(P.frame64(chain.mac(0, "out")), N, cpu=0)
            got = sink.packets() - before
            assert got >= N * 0.99
            # a stray frame may add one to the count: round, do not floor
            assert round((sink.bytes() - nbytes) / got) == 60, "popped back to the 60-byte frame"
    finally:
        if gen:
            gen.close()
        chain.delete()
