"""Pure logic of the management plane: placement, VNI candidates, object helpers, the hollow
daemon's tables, and the hash ring's moved share when an operator instance joins (NET-7)."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from centaurus.controllers.runtime.sharding import Member, Ring, hash_of_text
from centaurus.mizar import model as M
from centaurus.mizar.hollow import HollowService, _Abort
from centaurus.mizar.ipam import VNI_FIRST, VNI_LAST, SubnetPool, net_id, vni_candidates
from centaurus.mizar.placement import Candidate, place
from centaurus.transitd.rpc import pb


def test_placement_spreads_zones_and_keeps_what_is_placed() -> None:
    cands = [
        Candidate("a", "az1", 0),
        Candidate("b", "az1", 0),
        Candidate("c", "az2", 3),
        Candidate("d", "az3", 5),
    ]
    two = place("net/x", 2, cands)
    assert len(set(two)) == 2
    assert len({next(c.zone for c in cands if c.name == n) for n in two}) == 2, "same zone twice"
    three = place("net/x", 3, cands, two)
    assert three[:2] == two, "scaling out moved an existing bouncer"
    assert place("net/x", 1, cands, three) == [n for n in three if n in place("net/x", 1, cands, three)]
    assert len(place("net/x", 1, cands, three)) == 1
    assert place("net/x", 5, cands) and len(place("net/x", 5, cands)) == 4, "more than there are droplets"
    assert place("net/x", 2, []) == []


def test_placement_prefers_the_least_loaded_and_is_deterministic() -> None:
    cands = [Candidate(f"d{i}", "", load=i) for i in range(6)]
    assert place("vpc/v", 2, cands) == ["d0", "d1"]
    spread = [Candidate(f"d{i}", "") for i in range(16)]
    assert place("net/a", 2, spread) == place("net/a", 2, list(reversed(spread)))
    firsts = {place(f"net/{i}", 1, spread)[0] for i in range(40)}
    assert len(firsts) > 8, f"rendezvous hashing concentrated 40 nets on {firsts}"


def test_vni_candidates_are_deterministic_and_in_range() -> None:
    a = list(vni_candidates("uid-1"))
    assert a == list(vni_candidates("uid-1"))
    assert len(set(a)) == len(a) and all(VNI_FIRST <= v <= VNI_LAST for v in a)
    assert a[0] != next(vni_candidates("uid-2"))
    assert 0 < net_id(5, "10.0.0.0/24") < 2**31 and net_id(5, "10.0.0.0/24") != net_id(6, "10.0.0.0/24")


def test_subnet_pool_skips_gateway_and_reuses_late() -> None:
    pool = SubnetPool("10.9.0.0/29", ["10.9.0.3"])
    got = [pool.allocate() for _ in range(4)]
    assert "10.9.0.1" not in got and "10.9.0.3" not in got and len(set(got)) == 4
    assert all(ipaddress.IPv4Address(ip) in ipaddress.IPv4Network("10.9.0.0/29") for ip in got)
    assert got == ["10.9.0.2", "10.9.0.4", "10.9.0.5", "10.9.0.6"]
    with pytest.raises(Exception, match="no free address"):
        pool.allocate()
    pool.release("10.9.0.4")
    assert pool.allocate() == "10.9.0.4"  # the only free one, handed out after the cursor wrapped


def test_model_helpers() -> None:
    vpc: dict[str, Any] = {
        "metadata": {"name": "t.v", "labels": {M.L_TENANT: "t"}},
        "spec": {"ip": "10.0.0.0", "prefix": "8"},
    }
    assert str(M.cidr_of(vpc)) == "10.0.0.0/8" and M.vpc_tenant(vpc) == "t"
    assert M.phase({"spec": {"status": "Init"}}) == "Init"
    assert M.phase({"status": {"phase": "Provisioned"}, "spec": {"status": "Init"}}) == "Provisioned"
    assert M.count("3", 1, 1, 16) == 3 and M.count(None, 1, 1, 16) == 1 and M.count(99, 1, 1, 16) == 16
    assert M.network_vpc_name("t1", "default") == "t1.default"
    with pytest.raises(ValueError):
        M.cidr_of({"spec": {"ip": "10.0.0.1", "prefix": "8"}})  # host bits set


class _Ctx:
    def __init__(self, droplet: str) -> None:
        self.droplet = droplet

    def invocation_metadata(self) -> list[tuple[str, str]]:
        return [("x-droplet", self.droplet)]


def test_hollow_daemon_keeps_transitd_order_and_reports_holders() -> None:
    svc = HollowService()
    d1, d2 = svc.droplet(_Ctx("d1"), "x"), svc.droplet(_Ctx("d2"), "x")
    ep = pb.Endpoint(vni=7, ip="10.0.0.5", mac="02:00:00:00:00:01", host_ip="1.1.1.1", kind="simple")
    with pytest.raises(_Abort, match="VPC 7 is not known"):
        svc.handle("UpdateEp", ep, d1)
    svc.handle("UpdateVpc", pb.Vpc(vni=7, cidr="10.0.0.0/16"), d1)
    with pytest.raises(_Abort, match="no network"):
        svc.handle("UpdateEp", ep, d1)
    for d in (d1, d2):
        svc.handle("UpdateVpc", pb.Vpc(vni=7, cidr="10.0.0.0/16"), d)
        svc.handle("UpdateNet", pb.Net(vni=7, cidr="10.0.0.0/24", bouncers=["1.1.1.1"]), d)
        svc.handle("UpdateEp", ep, d)
    assert svc.report({"keys": [[7, "10.0.0.5"]]})["holders"] == {"7/10.0.0.5": ["d1", "d2"]}
    svc.handle("DeleteEp", pb.EpKey(vni=7, ip="10.0.0.5"), d1)
    with pytest.raises(_Abort):
        svc.handle("DeleteEp", pb.EpKey(vni=7, ip="10.0.0.5"), d1)
    assert svc.report({"keys": [[7, "10.0.0.5"]]})["holders"] == {"7/10.0.0.5": ["d2"]}


def test_ring_join_moves_only_the_joiners_share() -> None:
    """NET-7's consistent-hash property on the operators' ring: VPCs hash by name; when an
    instance joins (taking half of the largest arc) only VPCs of that half move, all to the
    joiner; when it leaves they go back to exactly where they were."""
    vpcs = [M.mizar_key(f"tenant-{i}.default") for i in range(2000)]
    hashes = [hash_of_text(v) for v in vpcs]
    two = Ring([Member(2**62, "op-0"), Member(2**63 - 1, "op-1")])
    before = [two.owner(h).name for h in hashes]  # type: ignore[union-attr]
    key = two.pick_key()
    three = Ring([*two.members, Member(key, "op-2")])
    after = [three.owner(h).name for h in hashes]  # type: ignore[union-attr]
    moved = [i for i in range(len(vpcs)) if before[i] != after[i]]
    assert all(after[i] == "op-2" for i in moved), "a VPC moved between two old instances"
    lo, hi = three.arc("op-2")  # type: ignore[misc]
    share = ((hi - lo) % 2**63) / 2**63
    fraction = len(moved) / len(vpcs)
    assert abs(fraction - share) < 0.05, f"moved {fraction:.3f}, the joiner's arc is {share:.3f}"
    assert [two.owner(h).name for h in hashes] == before  # type: ignore[union-attr]


def test_pod_endpoint_object_and_provision_waiters() -> None:
    """The Endpoint both node sides write, and the waiters one endpoint watch wakes."""
    import asyncio

    from centaurus.mizar.podendpoint import ProvisionWaiters, pod_endpoint
    from centaurus.netplug.base import NetworkError, PodNetRequest

    pod = PodNetRequest(uid="u1", tenant="t", namespace="ns", name="p")
    ep = pod_endpoint(pod, droplet="d1", node="n1", vpc="v", subnet="s", veth="clm1", mac="02:aa",
                      finalizers=[M.FINALIZER], labels={"x": "y"}, itf="eth0")
    assert ep["metadata"]["labels"] == {M.L_DROPLET: "d1", M.L_POD_UID: "u1", "x": "y"}
    assert ep["metadata"]["finalizers"] == [M.FINALIZER]
    assert ep["metadata"]["ownerReferences"][0]["uid"] == "u1"
    assert {k: ep["spec"][k] for k in ("net", "droplet", "node", "podUid", "itf")} == {
        "net": "s", "droplet": "d1", "node": "n1", "podUid": "u1", "itf": "eth0"}
    assert "finalizers" not in pod_endpoint(pod, droplet="d", node="d", vpc="v", subnet="s", veth="h",
                                            mac=None)["metadata"]

    async def run() -> None:
        w = ProvisionWaiters()
        fut = w.expect("t/ns/p")
        w.note("t/ns/p", {"status": {"phase": M.INIT}})
        assert not fut.done()
        w.note("t/ns/p", {"status": {"phase": M.PROVISIONED}})
        assert (await w.wait("t/ns/p", fut, 1.0))["status"]["phase"] == M.PROVISIONED
        late = w.expect("t/ns/q")
        with pytest.raises(NetworkError, match="not provisioned within"):
            await w.wait("t/ns/q", late, 0.01)
        left = w.expect("t/ns/r")
        w.cancel_all()
        assert left.cancelled()

    asyncio.run(run())
