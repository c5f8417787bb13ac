"""The management plane against a real control plane and its two network-operator processes,
with hollow droplets (one hollow transit daemon): pipelines to Provisioned, scale-out on distinct
droplets, bounded endpoint fan-out read back from the daemons, Failed with reasons, resuming after
kill -9 of every operator mid-way, and VPC partitioning between instances (NET-5, NET-7,
PERF-NET-3)."""

from __future__ import annotations

import ipaddress
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from centaurus.controllers.runtime.sharding import Member, Ring, hash_of_text
from centaurus.mizar import model as M

from .conftest import (
    MZ,
    Hollow,
    Plane,
    delete_quietly,
    make_endpoint,
    make_subnet,
    make_vpc,
    mz_get,
    mz_list,
    provisioned,
    unique,
    wait,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def ep_keys(api: Any, ns: str, names: list[str]) -> dict[str, tuple[int, str]]:
    out = {}
    for n in names:
        e = api.get("endpoints", n, namespace=ns, group_version=M.GV)
        out[n] = (int(M.status(e)["vni"]), str(M.spec(e)["ip"]))
    return out


def owned_droplets(api: Any, plural: str, field: str, value: str) -> list[str]:
    return sorted(
        str(M.spec(o).get("droplet"))
        for o in mz_list(api, plural)
        if M.spec(o).get(field) == value and M.phase(o) == M.PROVISIONED and not M.deleting(o)
    )


def test_pipeline_scale_out_and_in_on_distinct_droplets(plane: Plane, hollow: Hollow) -> None:
    api = plane.api
    vpc, net = unique("vpc"), unique("net")
    make_vpc(api, vpc, "20.1.0.0/16")
    make_subnet(api, net, vpc, "20.1.1.0/24")
    try:
        wait(lambda: provisioned(api, "subnets", net), 30, "subnet provisioned")
        v = provisioned(api, "vpcs", vpc)
        assert v is not None and M.status(v)["vni"] >= 1 << 20
        assert M.status(v)["operator"] in plane.operators()
        assert (M.md(v).get("annotations") or {}).get(M.A_OPERATOR) == M.status(v)["operator"]
        assert len(owned_droplets(api, "dividers", "vpc", vpc)) == 1
        assert len(owned_droplets(api, "bouncers", "net", net)) == 1
        make_endpoint(api, "e1", vpc, net, hollow.droplets[0], namespace="default")
        wait(
            lambda: (
                M.phase(api.get("endpoints", "e1", namespace="default", group_version=M.GV)) == M.PROVISIONED
            ),
            20,
            "endpoint provisioned",
        )
        key = ep_keys(api, "default", ["e1"])["e1"]
        api.patch("subnets", net, {"spec": {"bouncers": 3}}, **MZ)
        api.patch("vpcs", vpc, {"spec": {"dividers": 2}}, **MZ)
        wait(lambda: len(owned_droplets(api, "bouncers", "net", net)) == 3, 30, "3 bouncers")
        wait(lambda: len(owned_droplets(api, "dividers", "vpc", vpc)) == 2, 30, "2 dividers")
        bouncers = owned_droplets(api, "bouncers", "net", net)
        zones = {M.spec(mz_get(api, "droplets", b) or {}).get("zone") for b in bouncers}
        assert len(zones) == 3, f"3 bouncers in zones {zones}: not spread"
        wait(
            lambda: (
                provisioned(api, "subnets", net)
                and sorted(M.status(provisioned(api, "subnets", net) or {}).get("bouncers") or []) == bouncers
            ),
            30,
            "subnet republished with 3 bouncers",
        )
        holders = set(hollow.holders([key])[f"{key[0]}/{key[1]}"])
        assert set(bouncers) <= holders, f"a new bouncer lacks the net's endpoint: {holders}"
        api.patch("subnets", net, {"spec": {"bouncers": 1}}, **MZ)
        wait(
            lambda: (
                len(owned_droplets(api, "bouncers", "net", net)) == 1
                and not [b for b in mz_list(api, "bouncers") if M.spec(b).get("net") == net and M.deleting(b)]
            ),
            30,
            "scaled in to 1 bouncer",
        )
        left = owned_droplets(api, "bouncers", "net", net)
        wait(
            lambda: set(hollow.holders([key])[f"{key[0]}/{key[1]}"]) == {hollow.droplets[0], *left},
            20,
            "removed bouncers forgot the endpoint",
        )
    finally:
        delete_quietly(api, "endpoints", "e1", namespace="default")
        delete_quietly(api, "subnets", net)
        delete_quietly(api, "vpcs", vpc)
    wait(lambda: mz_get(api, "vpcs", vpc) is None, 30, "VPC deleted")
    assert not [
        o for p in ("bouncers", "dividers") for o in mz_list(api, p) if vpc in (M.spec(o).get("vpc"),)
    ], "children left behind"


def test_endpoint_burst_fans_out_to_its_host_and_bouncers_only(plane: Plane, hollow: Hollow) -> None:
    """PERF-NET-3 on the object path: each endpoint is held by exactly its droplet and its net's
    bouncers (read back from the daemon); deleting them leaves nothing anywhere."""
    api = plane.api
    vpc, net = unique("vpc"), unique("net")
    make_vpc(api, vpc, "20.2.0.0/16")
    make_subnet(api, net, vpc, "20.2.0.0/20", bouncers=2)
    ns = unique("ns")
    api.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    names = [f"ep{i}" for i in range(40)]
    try:
        wait(lambda: provisioned(api, "subnets", net), 30, "subnet provisioned")
        bouncers = set(owned_droplets(api, "bouncers", "net", net))
        rnd = random.Random(1)
        hosts = {n: rnd.choice(hollow.droplets) for n in names}
        for n in names:
            make_endpoint(api, n, vpc, net, hosts[n], namespace=ns)
        wait(
            lambda: (
                sum(M.phase(e) == M.PROVISIONED for e in mz_list(api, "endpoints", namespace=ns))
                == len(names)
            ),
            60,
            "40 endpoints provisioned",
        )
        keys = ep_keys(api, ns, names)
        ips = [ip for _, ip in keys.values()]
        assert len(set(ips)) == len(ips), "an address was handed out twice"
        assert all(ipaddress.IPv4Address(ip) in ipaddress.IPv4Network("20.2.0.0/20") for ip in ips)
        holders = hollow.holders(list(keys.values()))
        for n, (vni, ip) in keys.items():
            got = set(holders[f"{vni}/{ip}"])
            assert got == {hosts[n]} | bouncers, f"{n}: held by {got}, expected its host and the bouncers"
        for n in names:
            api.delete("endpoints", n, namespace=ns, group_version=M.GV)
        wait(lambda: not mz_list(api, "endpoints", namespace=ns), 60, "endpoints deleted")
        assert not any(hollow.holders(list(keys.values())).values()), "an endpoint survived its deletion"
    finally:
        delete_quietly(api, "subnets", net)
        delete_quietly(api, "vpcs", vpc)
        delete_quietly(api, "namespaces", ns, namespace=None, group_version="v1")


def test_impossible_objects_fail_with_a_reason(plane: Plane, hollow: Hollow) -> None:
    api = plane.api
    vpc, vpc2, net, bad = unique("vpc"), unique("vpc"), unique("net"), unique("net")
    make_vpc(api, vpc, "20.3.0.0/16", vni=4242)
    make_subnet(api, net, vpc, "20.3.1.0/24")
    make_subnet(api, bad, vpc, "20.9.1.0/24")
    try:
        wait(lambda: provisioned(api, "subnets", net), 30, "subnet provisioned")
        assert M.status(provisioned(api, "vpcs", vpc) or {}).get("vni") == 4242
        b = wait(
            lambda: (o := mz_get(api, "subnets", bad)) and M.phase(o) == M.FAILED and o, 20, "subnet Failed"
        )
        assert "not inside VPC" in M.status(b)["reason"]
        make_vpc(api, vpc2, "20.4.0.0/16", vni=4242)
        v2 = wait(
            lambda: (o := mz_get(api, "vpcs", vpc2)) and M.phase(o) == M.FAILED and o, 20, "duplicate VNI"
        )
        assert "already used" in M.status(v2)["reason"]
        make_endpoint(api, "e-out", vpc, net, hollow.droplets[1], namespace="default", ip="20.3.9.9")
        e = wait(
            lambda: (
                (o := api.get("endpoints", "e-out", namespace="default", group_version=M.GV))
                and M.phase(o) == M.FAILED
                and o
            ),
            20,
            "endpoint Failed",
        )
        assert "not an endpoint address" in M.status(e)["reason"]
    finally:
        delete_quietly(api, "endpoints", "e-out", namespace="default")
        for s in (net, bad):
            delete_quietly(api, "subnets", s)
        for v in (vpc, vpc2):
            delete_quietly(api, "vpcs", v)


def test_tenant_endpoint_needs_its_own_pod_and_vpc(plane: Plane, hollow: Hollow) -> None:
    """A tenant user cannot plug an endpoint into the system's VPC, nor one without its pod."""
    api = plane.api
    t = unique("t")
    api.create("tenants", {"apiVersion": "v1", "kind": "Tenant", "metadata": {"name": t}, "spec": {}})
    vpc, net = unique("vpc"), unique("net")
    make_vpc(api, vpc, "20.5.0.0/16")
    make_subnet(api, net, vpc, "20.5.1.0/24")
    try:
        wait(lambda: api.get("namespaces", "default", tenant=t), 20, "tenant default namespace")
        wait(lambda: provisioned(api, "subnets", net), 30, "subnet provisioned")
        make_endpoint(api, "intruder", vpc, net, hollow.droplets[0], tenant=t)
        e = wait(
            lambda: (
                (o := api.get("endpoints", "intruder", namespace="default", tenant=t, group_version=M.GV))
                and M.phase(o) == M.FAILED
                and o
            ),
            20,
            "foreign endpoint Failed",
        )
        assert "another tenant" in M.status(e)["reason"]
    finally:
        delete_quietly(api, "subnets", net)
        delete_quietly(api, "vpcs", vpc)
        delete_quietly(api, "tenants", t, namespace=None, group_version="v1")


def test_pipelines_resume_after_kill9_of_every_operator(plane: Plane, hollow: Hollow) -> None:
    """NET-5: kill -9 both operator instances in the middle of a burst of endpoint creations and
    again in the middle of their deletions; once they run again every endpoint is Provisioned
    and held exactly by its host and bouncers, then deleted everywhere -- nothing half-programmed.
    A VPC created while they are down stays Init and is provisioned after the restart."""
    api = plane.api
    ops = plane.operators()
    vpc, net, ns = unique("vpc"), unique("net"), unique("ns")
    make_vpc(api, vpc, "20.6.0.0/16")
    make_subnet(api, net, vpc, "20.6.0.0/20", bouncers=2)
    api.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    names = [f"k{i}" for i in range(60)]
    rnd = random.Random(2)
    hosts = {n: rnd.choice(hollow.droplets) for n in names}
    late, late_net = unique("vpc"), unique("net")
    try:
        wait(lambda: provisioned(api, "subnets", net), 30, "subnet provisioned")
        bouncers = set(owned_droplets(api, "bouncers", "net", net))
        for i, n in enumerate(names):
            make_endpoint(api, n, vpc, net, hosts[n], namespace=ns)
            if i == 20:
                for op in ops:
                    plane.kill(op)
        states = {M.phase(e) for e in mz_list(api, "endpoints", namespace=ns)}
        assert M.INIT in states, f"no endpoint left unprovisioned by the kill: {states}"
        make_vpc(api, late, "20.7.0.0/16")
        make_subnet(api, late_net, late, "20.7.1.0/24")
        time.sleep(1.0)
        assert M.phase(mz_get(api, "vpcs", late) or {}) == M.INIT, "provisioned with every operator dead"
        for op in ops:
            plane.start(op)
        wait(
            lambda: (
                sum(M.phase(e) == M.PROVISIONED for e in mz_list(api, "endpoints", namespace=ns))
                == len(names)
            ),
            90,
            "every endpoint provisioned after the restart",
        )
        wait(lambda: provisioned(api, "subnets", late_net), 60, "late VPC and subnet provisioned")
        keys = ep_keys(api, ns, names)
        holders = hollow.holders(list(keys.values()))
        for n, (vni, ip) in keys.items():
            assert set(holders[f"{vni}/{ip}"]) == {hosts[n]} | bouncers, f"{n} half-programmed"
        assert len({ip for _, ip in keys.values()}) == len(names), "duplicate address after the restart"
        for i, n in enumerate(names):
            api.delete("endpoints", n, namespace=ns, group_version=M.GV)
            if i == 30:
                for op in ops:
                    plane.kill(op)
        time.sleep(0.5)
        for op in ops:
            plane.start(op)
        wait(lambda: not mz_list(api, "endpoints", namespace=ns), 90, "endpoints deleted after the restart")
        assert not any(hollow.holders(list(keys.values())).values()), "an endpoint left on some droplet"
    finally:
        for op in ops:
            plane.start(op)
        for s in (net, late_net):
            delete_quietly(api, "subnets", s)
        for v in (vpc, late):
            delete_quietly(api, "vpcs", v)
        delete_quietly(api, "namespaces", ns, namespace=None, group_version="v1")


def _ring(api: Any) -> Ring:
    cis = [c for c in api.list("controllerinstances")["items"] if c.get("controllerType") == "mizar"]
    return Ring(
        [
            Member(
                int(c["controllerKey"]),
                (c["metadata"].get("labels") or {}).get("centaurus.io/controller-instance", ""),
                bool(c.get("isLocked")),
            )
            for c in cis
        ]
    )


def test_vpcs_are_partitioned_and_a_joining_instance_takes_only_its_share(
    plane: Plane, hollow: Hollow, tmp_path: Path
) -> None:
    """NET-7: VPCs split over the instances by the hash ring (a VPC and its subnet always on one
    instance); a third instance joining takes exactly the VPCs of its arc -- every moved VPC moves
    to it -- and when it leaves they return to where they were. Moved fractions are written to
    ``partition.json``."""
    api = plane.api
    made = [(unique("vpc"), unique("net")) for _ in range(24)]
    extra = None
    try:
        for i, (vpc, net) in enumerate(made):
            make_vpc(api, vpc, f"21.{i}.0.0/16")
            make_subnet(api, net, vpc, f"21.{i}.1.0/24")
        wait(lambda: all(provisioned(api, "subnets", n) for _, n in made), 60, "24 subnets provisioned")

        def owners() -> dict[str, str]:
            """VPC -> its instance; a VPC whose subnet is handled by another instance -> "split"."""
            out = {}
            for vpc, net in made:
                v, s = mz_get(api, "vpcs", vpc) or {}, mz_get(api, "subnets", net) or {}
                same = M.status(v).get("operator") == M.status(s).get("operator")
                out[vpc] = str(M.status(v).get("operator")) if same else "split"
            return out

        def expected(r: Ring) -> dict[str, str]:
            return {vpc: r.owner(hash_of_text(M.mizar_key(vpc))).name for vpc, _ in made}  # type: ignore[union-attr]

        wait(lambda: owners() == expected(_ring(api)), 30, "owners match the ring")
        before = owners()
        assert len(set(before.values())) == 2, f"every VPC on one instance: {before}"
        env = {**os.environ}
        extra = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "centaurus.mizar",
                "--kubeconfig",
                str(plane.kubeconfig),
                "--instance",
                "network-operator-x",
                "--log-level",
                "WARNING",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        wait(lambda: len([m for m in _ring(api).members if not m.locked]) == 3, 60, "3 unlocked ring members")
        three = _ring(api)
        wait(lambda: owners() == expected(three), 60, "VPCs re-owned after the join")
        after = owners()
        moved = [v for v in before if before[v] != after[v]]
        assert moved, "the joining instance took no VPC: the join proved nothing"
        assert all(after[v] == "network-operator-x" for v in moved), "a VPC moved between the old instances"
        lo, hi = three.arc("network-operator-x")  # type: ignore[misc]
        share = ((hi - lo) % 2**63) / 2**63
        extra.send_signal(signal.SIGTERM)
        extra.wait(timeout=30)
        extra = None
        wait(lambda: owners() == before, 60, "VPCs back where they were after the leave")
        print(
            f"NET-7: {len(moved)}/{len(made)} VPCs moved to the joining instance "
            f"(fraction {len(moved) / len(made):.3f}, its arc {share:.3f}); all returned on leave"
        )
        (tmp_path / "partition.json").write_text(
            json.dumps(
                {
                    "vpcs": len(made),
                    "moved_on_join": len(moved),
                    "moved_fraction": len(moved) / len(made),
                    "joiner_arc_share": share,
                }
            )
        )
    finally:
        if extra is not None:
            extra.kill()
            extra.wait()
        for vpc, net in made:
            delete_quietly(api, "subnets", net)
            delete_quietly(api, "vpcs", vpc)


def test_an_endpoint_deleted_behind_the_operators_back_is_still_removed(plane: Plane, hollow: Hollow) -> None:
    """A namespace being force-emptied strips finalizers before deleting: the operator still
    removes such an endpoint from its hosts, from the last state the watch delivered."""
    api = plane.api
    vpc, net = unique("vpc"), unique("net")
    make_vpc(api, vpc, "20.8.0.0/16")
    make_subnet(api, net, vpc, "20.8.1.0/24")
    try:
        wait(lambda: provisioned(api, "subnets", net), 30, "subnet provisioned")
        make_endpoint(api, "stripped", vpc, net, hollow.droplets[2], namespace="default")
        wait(
            lambda: (
                M.phase(api.get("endpoints", "stripped", namespace="default", group_version=M.GV))
                == M.PROVISIONED
            ),
            20,
            "endpoint provisioned",
        )
        key = ep_keys(api, "default", ["stripped"])["stripped"]
        assert hollow.holders([key])[f"{key[0]}/{key[1]}"]
        api.patch(
            "endpoints",
            "stripped",
            {"metadata": {"finalizers": None}},
            namespace="default",
            group_version=M.GV,
        )
        api.delete("endpoints", "stripped", namespace="default", group_version=M.GV)
        wait(
            lambda: not hollow.holders([key])[f"{key[0]}/{key[1]}"],
            20,
            "stripped endpoint removed everywhere",
        )
    finally:
        delete_quietly(api, "endpoints", "stripped", namespace="default")
        delete_quietly(api, "subnets", net)
        delete_quietly(api, "vpcs", vpc)


def test_droplet_sweep_removes_entries_no_object_explains(plane: Plane, hollow: Hollow) -> None:
    """The last resort behind the finalizers: an endpoint entry of a managed VPC that no Endpoint
    object explains (written behind the management plane's back) is removed from the droplet by
    its periodic sweep; the explained ones stay."""
    import asyncio

    from centaurus.mizar.transit import TransitPool, ep_msg

    api = plane.api
    vpc, net = unique("vpc"), unique("net")
    make_vpc(api, vpc, "20.9.0.0/16")
    make_subnet(api, net, vpc, "20.9.1.0/24")
    try:
        wait(lambda: provisioned(api, "subnets", net), 30, "subnet provisioned")
        host = hollow.droplets[3]
        make_endpoint(api, "kept", vpc, net, host, namespace="default")
        wait(
            lambda: (
                M.phase(api.get("endpoints", "kept", namespace="default", group_version=M.GV))
                == M.PROVISIONED
            ),
            20,
            "endpoint provisioned",
        )
        kept = ep_keys(api, "default", ["kept"])["kept"]
        stray = (kept[0], "20.9.1.250")

        async def inject() -> None:
            pool = TransitPool()
            try:
                await pool.call(
                    host,
                    f"hollow:{hollow.sock}#{host}",
                    "UpdateEp",
                    ep_msg(stray[0], stray[1], "02:00:00:00:00:09", "10.0.0.1"),
                )
            finally:
                await pool.close()

        asyncio.run(inject())
        assert hollow.holders([stray])[f"{stray[0]}/{stray[1]}"] == [host]
        wait(lambda: not hollow.holders([stray])[f"{stray[0]}/{stray[1]}"], 30, "stray entry swept")
        assert host in hollow.holders([kept])[f"{kept[0]}/{kept[1]}"], (
            "the sweep removed an explained endpoint"
        )
    finally:
        delete_quietly(api, "endpoints", "kept", namespace="default")
        delete_quietly(api, "subnets", net)
        delete_quietly(api, "vpcs", vpc)


def test_network_objects_by_type_tenant_defaults_and_cleanup(plane: Plane, hollow: Hollow) -> None:
    """API-5 behaviour on the controller: the tenant's default Network (flat without a template),
    mizar Networks becoming a tenant's own VPC + subnet (two networks sharing a vpcID share the
    VPC; the same CIDR in another tenant is another VPC/VNI), an unknown type Failed, a type
    change, deletion, and a deleted tenant's networks and VPCs going away."""
    api = plane.api
    tag = unique("rd")
    real = [f"{tag}-{i}" for i in range(3)]  # droplets without the hollow label: real VPCs may use them
    for i, name in enumerate(real):
        api.create(
            "droplets",
            {
                "apiVersion": M.GV,
                "kind": "Droplet",
                "metadata": {"name": name},
                "spec": {
                    "ip": f"10.132.0.{i + 1}",
                    "mac": "02:00:00:00:00:03",
                    "zone": f"az{i + 1}",
                    "transitd": f"hollow:{hollow.sock}#{name}",
                },
            },
            **MZ,
        )
    t, u = unique("nt"), unique("nu")
    ngv = {"group_version": M.NETWORK_GV}

    def status(tenant: str, name: str) -> dict[str, Any]:
        return dict(api.get("networks", name, tenant=tenant, **ngv).get("status") or {})

    def ready(tenant: str, name: str) -> dict[str, Any] | None:
        st = status(tenant, name)
        return st if st.get("phase") == "Ready" else None

    def mk(tenant: str, name: str, **spec: Any) -> None:
        api.create(
            "networks",
            {"apiVersion": M.NETWORK_GV, "kind": "Network", "metadata": {"name": name}, "spec": spec},
            tenant=tenant,
            **ngv,
        )

    try:
        wait(lambda: all(provisioned(api, "droplets", d) for d in real), 30, "droplets provisioned")
        for x in (t, u):
            api.create("tenants", {"apiVersion": "v1", "kind": "Tenant", "metadata": {"name": x}, "spec": {}})
        d = wait(lambda: ready(t, "default"), 30, "tenant default network Ready")
        assert api.get("networks", "default", tenant=t, **ngv)["spec"]["type"] == "flat" and d["cidr"]
        mk(t, "n1", type="mizar", cidr="10.0.0.0/16")
        mk(t, "n2", type="mizar", vpcID="n1", cidr="10.1.0.0/16")
        mk(u, "n1", type="mizar", cidr="10.0.0.0/16")
        mk(t, "odd", type="no-such-type")
        a, b, c = (
            wait(lambda x=x, n=n: ready(x, n), 60, f"{x}/{n} Ready")
            for x, n in ((t, "n1"), (t, "n2"), (u, "n1"))
        )
        assert a["vpc"] == b["vpc"] == f"{t}.n1" and a["subnet"] != b["subnet"] and a["vni"] == b["vni"]
        assert c["vpc"] == f"{u}.n1" and c["vni"] != a["vni"] and c["cidr"] == a["cidr"] == "10.0.0.0/16"
        odd = wait(
            lambda: status(t, "odd").get("phase") == "Failed" and status(t, "odd"), 20, "unknown type Failed"
        )
        assert "unknown network type" in odd["message"]
        api.patch("networks", "default", {"spec": {"type": "mizar"}}, tenant=t, **ngv)
        wait(
            lambda: (st := ready(t, "default")) and st.get("type") == "mizar" and st.get("vpc"),
            60,
            "default network retyped to mizar",
        )
        api.delete("networks", "n2", tenant=t, **ngv)
        wait(lambda: mz_get(api, "subnets", b["subnet"]) is None, 60, "n2's subnet deleted")
        assert mz_get(api, "vpcs", a["vpc"]) is not None, "the shared VPC went with n2"
        api.delete("tenants", t)
        wait(
            lambda: mz_get(api, "vpcs", a["vpc"]) is None and mz_get(api, "vpcs", f"{t}.default") is None,
            90,
            "the deleted tenant's VPCs gone",
        )
        assert mz_get(api, "vpcs", c["vpc"]) is not None, "another tenant's VPC went too"
    finally:
        for x in (t, u):
            delete_quietly(api, "tenants", x, namespace=None, group_version="v1")
        wait(
            lambda: not [v for v in mz_list(api, "vpcs") if M.labels(v).get(M.L_TENANT) in (t, u)],
            90,
            "tenant VPCs gone",
        )
        for name in real:
            delete_quietly(api, "droplets", name)
