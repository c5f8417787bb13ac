"""Direct path (NET-4): a bounced frame teaches the receiving droplet where its sender lives;
replies then go straight to that host carrying LEARN so the sender learns the way back;
entries expire and are invalidated by generation or deletion."""

from __future__ import annotations

import time

from scapy.contrib.geneve import GENEVE
from scapy.layers.inet import IP
from scapy.layers.l2 import Ether
from xdputil import D2, D3, D3_MAC, ME, VNI_A, A, B, C, Droplet, geneve, inner, parse_rts, rts

from centaurus.bpf import maps as M

# C lives on D3 (the bouncer D2 forwarded its frame: outer source is the bouncer)


def bounced_from_d3(src_ip: str = C[1], flags: int = M.RTS_F_BOUNCED) -> Ether:
    return geneve(inner((*C[:1], src_ip, *C[2:]), A[1]), VNI_A, src=D2,
                  options=[rts(D3, D3_MAC, flags=flags)])


def test_bounced_frame_fills_the_host_cache(d1: Droplet) -> None:
    assert d1.ov.direct_path(VNI_A, C[1]) is None
    assert d1.transit(bounced_from_d3()).action == "XDP_REDIRECT"
    assert d1.ov.direct_path(VNI_A, C[1]) == D3
    h = d1.ov.hostcache.lookup(M.EpKey(vni=VNI_A, ip=M.ip4(C[1])))
    assert M.mac_str(h.mac) == D3_MAC and h.notify == M.HOSTCACHE_NOTIFY
    assert d1.delta() == {"rx_decap": 1, "learned": 1}


def test_then_encap_goes_straight_to_the_host_and_teaches_the_sender(d1: Droplet) -> None:
    before = Ether(d1.agent(inner(A, C[1])).data_out)
    assert before[IP].dst == D2, "no direct path yet: via the bouncer"
    d1.transit(bounced_from_d3())
    d1.mark()
    flags = []
    for _ in range(M.HOSTCACHE_NOTIFY + 2):
        r = d1.agent(inner(A, C[1]))
        o = Ether(r.data_out)
        assert r.action == "XDP_REDIRECT" and o[IP].dst == D3 and o.dst == D3_MAC
        flags.append(parse_rts(o[GENEVE])[0])
    assert flags == [M.RTS_F_LEARN] * M.HOSTCACHE_NOTIFY + [0, 0]
    assert d1.delta() == {"tx_encap": 5, "direct": 5}


def test_learn_flag_is_learned_without_arming_notify(d1: Droplet) -> None:
    d1.transit(bounced_from_d3(flags=M.RTS_F_LEARN))
    h = d1.ov.hostcache.lookup(M.EpKey(vni=VNI_A, ip=M.ip4(C[1])))
    assert h is not None and h.notify == 0 and M.ip4_str(h.host_ip) == D3


def test_unflagged_direct_frames_do_not_touch_the_cache(d1: Droplet) -> None:
    d1.transit(bounced_from_d3(flags=0))
    assert d1.ov.direct_path(VNI_A, C[1]) is None
    assert d1.delta() == {"rx_decap": 1}


def test_fresh_entry_is_not_rewritten_but_rearmed(d1: Droplet) -> None:
    d1.transit(bounced_from_d3())
    for _ in range(M.HOSTCACHE_NOTIFY):
        d1.agent(inner(A, C[1]))
    d1.mark()
    d1.transit(bounced_from_d3())
    assert d1.delta() == {"rx_decap": 1}, "no second map write for a fresh entry"
    o = Ether(d1.agent(inner(A, C[1])).data_out)
    assert parse_rts(o[GENEVE])[0] == M.RTS_F_LEARN, "a new bounce re-arms the notification"


def test_expired_entry_is_not_used(d1: Droplet) -> None:
    d1.ov.set_config(ME, "02:00:0a:c7:00:0b", d1.ifx["sub0"], hostcache_ttl_ns=50_000_000)
    d1.transit(bounced_from_d3())
    assert Ether(d1.agent(inner(A, C[1])).data_out)[IP].dst == D3
    time.sleep(0.12)  # 50 ms is a few jiffies at any HZ
    assert Ether(d1.agent(inner(A, C[1])).data_out)[IP].dst == D2, "expired: back to the bouncer"
    assert d1.ov.direct_path(VNI_A, C[1]) is None


def test_generation_bump_invalidates_every_entry(d1: Droplet) -> None:
    d1.transit(bounced_from_d3())
    gen = d1.ov.get_config().hostcache_gen
    # an entry of the old generation that userspace did not delete is ignored
    d1.ov.learn(VNI_A, C[1], D3, D3_MAC)
    assert d1.ov.flush_hostcache() == gen + 1
    d1.ov.hostcache.update(M.EpKey(vni=VNI_A, ip=M.ip4(C[1])),
                           M.HostCache(host_ip=M.ip4(D3), gen=gen, expires_j=2**62))
    d1.ov.bump_epoch()
    assert Ether(d1.agent(inner(A, C[1])).data_out)[IP].dst == D2


def test_deleting_an_endpoint_forgets_its_direct_path(d1: Droplet) -> None:
    d1.transit(bounced_from_d3())
    d1.ov.delete_endpoint(VNI_A, C[1])
    assert d1.ov.direct_path(VNI_A, C[1]) is None
    assert Ether(d1.agent(inner(A, C[1])).data_out)[IP].dst == D2


def test_endpoint_moving_here_wins_over_a_learned_path(d1: Droplet) -> None:
    d1.transit(bounced_from_d3())
    d1.ov.put_endpoint(VNI_A, C[1], host_ip=ME, mac=C[2], vpc_cidr="10.10.0.0/16",
                       ifindex=d1.ifx["veb"], net_id=1)
    r = d1.agent(inner(A, C[1]))
    assert r.action == "XDP_REDIRECT" and Ether(r.data_out).dst == C[2], "local, no encap"


def test_rts_naming_ourselves_or_nobody_is_not_learned(d1: Droplet) -> None:
    for host in (ME, "0.0.0.0"):
        d1.transit(geneve(inner(C, A[1]), VNI_A, options=[rts(host, flags=M.RTS_F_BOUNCED)]))
    assert d1.ov.direct_path(VNI_A, C[1]) is None


def test_frame_sent_via_a_bouncer_that_is_the_destination_host_is_learned(d1: Droplet) -> None:
    """The sender's bouncer pick was our droplet itself: no BOUNCED, but VIA says 'learn me'."""
    d1.transit(geneve(inner(C, A[1]), VNI_A, src=D3, options=[rts(D3, D3_MAC, flags=M.RTS_F_VIA)]))
    h = d1.ov.hostcache.lookup(M.EpKey(vni=VNI_A, ip=M.ip4(C[1])))
    assert h is not None and M.ip4_str(h.host_ip) == D3 and h.notify == M.HOSTCACHE_NOTIFY


def direct_from_d2(dst: str, flags: int = 0) -> Ether:
    return geneve(inner(C, dst), VNI_A, src=D2, options=[rts(D2, "02:00:0a:c7:00:0c", flags=flags)])


def test_deleted_local_endpoint_reflects_direct_frames_to_their_sender(d1: Droplet) -> None:
    d1.ov.delete_endpoint(VNI_A, A[1])
    d1.ov.delete_network(VNI_A, "10.10.1.0/24")  # nothing left here to re-route with
    d1.mark()
    r = d1.transit(direct_from_d2(A[1]))
    assert r.action == "XDP_TX"
    o = Ether(r.data_out)
    assert (o[IP].src, o[IP].dst) == (ME, D2)
    flags, host, _ = parse_rts(o[GENEVE])
    assert flags == M.RTS_F_STALE and host == D2
    assert bytes(o)[M.ENCAP_LEN:] == bytes(direct_from_d2(A[1]))[M.ENCAP_LEN:], "inner frame as sent"
    # frames that did not come on a learned direct path, or for strangers, stay counted drops
    assert d1.transit(direct_from_d2(A[1], flags=M.RTS_F_VIA)).action == "XDP_DROP"
    assert d1.transit(direct_from_d2(A[1], flags=M.RTS_F_BOUNCED)).action == "XDP_DROP"
    assert d1.transit(direct_from_d2("10.10.1.77")).action == "XDP_DROP"
    assert d1.delta() == {"reflected": 1, "drop_no_network": 3}


def test_deleted_endpoint_at_its_bouncer_reflects_too(d1: Droplet) -> None:
    d1.ov.put_network(VNI_A, "10.10.1.0/24", bouncers=[ME], net_id=1, bouncer_here=True)
    d1.ov.delete_endpoint(VNI_A, A[1])
    d1.mark()
    assert d1.transit(direct_from_d2(A[1])).action == "XDP_TX"
    assert d1.delta() == {"reflected": 1}


def test_tombstone_expires_and_readding_clears_it(d1: Droplet) -> None:
    d1.ov.set_config(ME, "02:00:0a:c7:00:0b", d1.ifx["sub0"], hostcache_ttl_ns=40_000_000)
    d1.ov.delete_network(VNI_A, "10.10.1.0/24")
    d1.ov.delete_endpoint(VNI_A, A[1])
    time.sleep(0.1)
    d1.mark()
    assert d1.transit(direct_from_d2(A[1])).action == "XDP_DROP"
    d1.ov.delete_endpoint(VNI_A, B[1])
    d1.ov.put_endpoint(VNI_A, B[1], host_ip=ME, mac=B[2], vpc_cidr="10.10.0.0/16", ifindex=d1.ifx["veb"])
    assert d1.transit(direct_from_d2(B[1])).action == "XDP_REDIRECT", "back: delivered, no tombstone"
    assert d1.ov.gone.lookup(M.EpKey(vni=VNI_A, ip=M.ip4(B[1]))) is None


def test_stale_reflection_makes_the_sender_forget_its_direct_path(d1: Droplet) -> None:
    d1.transit(bounced_from_d3())  # learned C -> D3
    assert Ether(d1.agent(inner(A, C[1])).data_out)[IP].dst == D3
    d1.mark()
    reflected = geneve(inner(A, C[1]), VNI_A, src=D3, options=[rts(ME, flags=M.RTS_F_STALE)])
    assert d1.transit(reflected).action == "XDP_DROP"
    assert d1.ov.direct_path(VNI_A, C[1]) is None
    assert Ether(d1.agent(inner(A, C[1])).data_out)[IP].dst == D2, "via the bouncer again"
    assert d1.delta() == {"invalidated": 1, "tx_encap": 1, "via_bouncer": 1}
