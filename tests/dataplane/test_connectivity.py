"""Mizar-style functional cases on BOTH dataplanes (the same spec, realised twice): every case
carries ICMP both ways, a TCP transfer compared byte for byte, UDP and HTTP."""

from __future__ import annotations

import hashlib
import os
from typing import Any

import pytest

from centaurus.labs import traffic

pytestmark = pytest.mark.integration


def full_exchange(lab: Any, a: str, b: str) -> None:
    """ICMP a<->b, TCP a->b (1 MiB echoed back identical), UDP a->b, HTTP a->b."""
    ip_a, ip_b = lab.endpoint(a).ip, lab.endpoint(b).ip
    assert traffic.ping(lab, a, ip_b, count=3) == 3, f"ICMP {a} -> {b} ({lab.dataplane.name})"
    assert traffic.ping(lab, b, ip_a, count=3) == 3, f"ICMP {b} -> {a} ({lab.dataplane.name})"
    t = traffic.tcp_transfer(lab, a, b, ip_b, nbytes=1 << 20)
    assert t["identical"] and t["received"] == 1 << 20, t
    u = traffic.udp_exchange(lab, a, b, ip_b, count=8)
    assert u["echoed"] == 8, u
    assert set(u["sources"]) == {ip_b}, u
    body = os.urandom(200_000)
    with traffic.http_server(lab, b, body):
        h = traffic.http_get(lab, a, f"http://{ip_b}:8080/index.html", count=2)
    assert h["failures"] == 0 and h["sha256"] == [hashlib.sha256(body).hexdigest()], h


def test_same_network_across_droplets(lab: Any) -> None:
    """a1 (d2) and a2 (d3) in net-a1."""
    assert lab.endpoint("a1").host != lab.endpoint("a2").host
    full_exchange(lab, "a1", "a2")


def test_networks_of_one_vpc(lab: Any) -> None:
    """net-a1 <-> net-a2 of vpc-a; a5 (added at run time on d3) is reached from d2 through the
    VPC's divider d1 on mizar-xdp (d2 is neither a divider nor a bouncer of net-a2)."""
    lab.add_endpoint({"name": "a5", "network": "net-a2", "ip": "10.10.2.11", "host": "d3"})
    try:
        before = lab.stats("d1")
        full_exchange(lab, "a1", "a5")
        full_exchange(lab, "a4", "a3")
        if lab.dataplane.name == "mizar-xdp":
            after = lab.stats("d1")
            assert after["divided"] > before["divided"], "divider d1 forwarded nothing"
    finally:
        lab.remove_endpoint("a5")


def test_overlapping_tenants_isolated(lab: Any) -> None:
    """a1 (tenant-a) and b1 (tenant-b) both own 10.10.1.10: each VPC reaches only its own."""
    assert lab.endpoint("a1").ip == lab.endpoint("b1").ip == "10.10.1.10"
    with traffic.server(lab, "a1", ["udp-echo", "--port", "5301", "--name", "a1", "--idle", "20"]), \
            traffic.server(lab, "b1", ["udp-echo", "--port", "5301", "--name", "b1", "--idle", "20"]):
        from_a = traffic.udp_send(lab, "a2", "10.10.1.10", count=6)
        assert from_a["servers"] == {"a1": 6}, from_a
        # b1's VPC has no 10.10.1.11 / .12: a2 and a4 are unreachable from tenant-b
        from_b = traffic.udp_send(lab, "b1", "10.10.1.11", count=3)
        assert from_b["echoed"] == 0, from_b
    assert traffic.ping(lab, "b1", "10.10.1.11", count=2, timeout=0.5) == 0
    assert traffic.ping(lab, "b1", "10.10.1.12", count=2, timeout=0.5) == 0
    assert traffic.ping(lab, "b1", "10.10.2.10", count=2, timeout=0.5) == 0
    body = b"tenant-a only\n" * 100
    with traffic.http_server(lab, "a1", body):
        h = traffic.http_get(lab, "a2", "http://10.10.1.10:8080/index.html")
        assert h["sha256"] == [hashlib.sha256(body).hexdigest()], h
    t = traffic.tcp_transfer(lab, "b1", "a1", "10.10.1.10", nbytes=4096, timeout=4)
    assert not t["identical"], "tenant-b reached its own address on tenant-a's endpoint"


def test_endpoint_delete_stops_traffic(lab: Any) -> None:
    """Unprogramming an endpoint (its netns untouched) stops traffic to it, on every host that
    had it; programming it again restores it. Then the lab-level dynamic add/remove."""
    ep = lab.endpoint("a2")
    hosts = lab._endpoint_hosts(lab.spec.endpoint("a2"))
    assert traffic.ping(lab, "a1", ep.ip, count=3) == 3
    lab.dataplane.remove_endpoint(ep, hosts)
    try:
        assert traffic.ping(lab, "a1", ep.ip, count=3, timeout=0.5) == 0
        assert traffic.ping(lab, "a4", ep.ip, count=2, timeout=0.5) == 0
    finally:
        lab.dataplane.apply_endpoint(ep, hosts)
    assert traffic.ping(lab, "a1", ep.ip, count=3) == 3

    new = lab.add_endpoint({"name": "a6", "network": "net-a1", "ip": "10.10.1.60", "host": "d1"})
    assert traffic.ping(lab, "a2", new.ip, count=3) == 3
    lab.remove_endpoint("a6")
    assert traffic.ping(lab, "a2", new.ip, count=2, timeout=0.5) == 0
    assert "a6" not in {h.name for h in lab.hosts("endpoint")}
