"""Behaviour only the Mizar overlay has: Geneve on the wire, bouncers and their load sharing,
the learned direct path, scaled endpoints, and a transitd crash that the dataplane survives."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from centaurus.labs import traffic

pytestmark = pytest.mark.integration


def flush(lab: Any, *droplets: str) -> None:
    from centaurus.transitd.rpc import pb

    for d in droplets:
        lab.dataplane.client(lab.droplet(d)).call("FlushHostCache", pb.Empty())


@contextlib.contextmanager
def capture(lab: Any, host: str, iface: str, path: Path, bpf: str = "udp port 6081") -> Iterator[Path]:
    """tcpdump -w in a lab host; stops (and flushes) on exit."""
    argv = ["tcpdump", "-i", iface, "--immediate-mode", "-U", "-n", "-s", "256", "-w", str(path), bpf]
    p = lab.popen(host, argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert p.stderr is not None
    line = p.stderr.readline()  # "listening on ..." once the capture is armed
    assert b"listening" in line, line
    try:
        yield path
    finally:
        time.sleep(0.2)
        p.send_signal(signal.SIGINT)
        p.wait(timeout=5)
        p.stderr.close()


def test_geneve_on_the_wire(xdp_lab: Any, tmp_path: Path) -> None:
    """Frames between droplets are Geneve (UDP 6081) with VNI = VPC id and Mizar's option class
    0x0111 carrying the sender's host, parsed by scapy from a capture on the lab switch."""
    from scapy.contrib.geneve import GENEVE
    from scapy.layers.inet import ICMP, IP, UDP
    from scapy.utils import rdpcap

    lab = xdp_lab
    d3 = lab.droplet("d3")
    with capture(lab, "sw", "p-d3", tmp_path / "wire.pcap") as pcap:
        assert traffic.ping(lab, "a2", "10.10.1.10", count=3) == 3
    frames = [f for f in rdpcap(str(pcap)) if f.haslayer(GENEVE)]
    assert frames, "no Geneve frame seen on the substrate"
    vpc_a = lab.endpoint("a2").vni
    from_d3 = [f for f in frames if f[IP].src == d3.ip]
    assert from_d3, "no frame from d3"
    for f in from_d3:
        g = f[GENEVE]
        assert f[UDP].dport == 6081
        assert g.vni == vpc_a == 1001
        assert g.proto == 0x6558  # transparent Ethernet bridging
        classes = {o.classid for o in g.options}
        assert 0x0111 in classes, f"option classes {classes}"
        inner = g.payload
        assert inner.haslayer(ICMP) and inner[IP].src == "10.10.1.11" and inner[IP].dst == "10.10.1.10"


def test_direct_path_learned(xdp_lab: Any) -> None:
    """a7 (d1) -> a3 (d2) in net-a2, whose only bouncer is d3: the first packets are bounced by
    d3; the bounced frame makes d2 tag its replies, d1 learns "a3 is on d2" and from then on
    sends straight there -- d3's ``bounced`` and d1's ``via_bouncer`` stop growing."""
    lab = xdp_lab
    lab.add_endpoint({"name": "a7", "network": "net-a2", "ip": "10.10.2.17", "host": "d1"})
    try:
        flush(lab, "d1", "d2", "d3")
        s0 = {d: lab.stats(d) for d in ("d1", "d2", "d3")}
        assert traffic.ping(lab, "a7", "10.10.2.10", count=4, interval=0.1) == 4
        s1 = {d: lab.stats(d) for d in ("d1", "d2", "d3")}
        assert s1["d1"]["via_bouncer"] > s0["d1"]["via_bouncer"], "first packets did not use a bouncer"
        assert s1["d3"]["bounced"] > s0["d3"]["bounced"], "bouncer d3 bounced nothing"
        assert s1["d1"]["learned"] > s0["d1"]["learned"], "d1 learned no direct path"
        assert traffic.ping(lab, "a7", "10.10.2.10", count=20, interval=0.02) == 20
        s2 = {d: lab.stats(d) for d in ("d1", "d2", "d3")}
        assert s2["d1"]["via_bouncer"] == s1["d1"]["via_bouncer"], "still via the bouncer after learning"
        assert s2["d3"]["bounced"] == s1["d3"]["bounced"], "bouncer counters still growing"
        assert s2["d1"]["direct"] - s1["d1"]["direct"] >= 20
        assert s2["d2"]["direct"] - s1["d2"]["direct"] >= 20  # replies go direct too
    finally:
        lab.remove_endpoint("a7")


def test_two_bouncers_share_load(xdp_lab: Any) -> None:
    """64 one-way UDP flows a2 (d3) -> a1 (d2) pick a bouncer of net-a1 (d1, d2) by flow hash:
    d1 bounces some (``bounced``), the others go to d2 itself."""
    lab = xdp_lab
    flush(lab, "d3")
    s0 = {d: lab.stats(d) for d in ("d1", "d3")}
    with traffic.server(lab, "a1", ["udp-echo", "--port", "5999", "--silent", "--idle", "10"]):
        traffic.probe(lab, "a2", ["udp-blast", "--to", "10.10.1.10", "--port", "5999", "--count", "64"])
        time.sleep(0.3)
    s1 = {d: lab.stats(d) for d in ("d1", "d3")}
    via = s1["d3"]["via_bouncer"] - s0["d3"]["via_bouncer"]
    by_d1 = s1["d1"]["bounced"] - s0["d1"]["bounced"]
    assert via == 64, f"{via} of 64 flows went via a bouncer"
    assert 0 < by_d1 < 64, f"d1 bounced {by_d1} of 64 flows: no load sharing between d1 and d2"


def test_scaled_endpoint_spreads_flows(xdp_lab: Any) -> None:
    """lb1 (10.10.1.100) over a2 and a4: flows from a1 land on both backends; replies come
    back from the virtual IP; TCP through the VIP is byte-for-byte; HTTP hits both."""
    lab = xdp_lab
    vip = lab.endpoint("lb1").ip
    with traffic.server(lab, "a2", ["udp-echo", "--port", "5301", "--name", "a2", "--idle", "20"]), \
            traffic.server(lab, "a4", ["udp-echo", "--port", "5301", "--name", "a4", "--idle", "20"]):
        r = traffic.udp_send(lab, "a1", vip, count=32)
    assert r["echoed"] == 32, r
    assert set(r["servers"]) == {"a2", "a4"}, r
    assert set(r["sources"]) == {vip}, f"replies not translated back to the VIP: {r['sources']}"
    assert traffic.ping(lab, "a1", vip, count=3) == 3
    seen: Counter[str] = Counter()
    with traffic.http_server(lab, "a2", b"backend a2\n"), traffic.http_server(lab, "a4", b"backend a4\n"):
        h = traffic.http_get(lab, "a1", f"http://{vip}:8080/index.html", count=24)
        seen.update(h["bodies"])
    assert h["failures"] == 0, h
    assert set(seen) == {"backend a2", "backend a4"}, seen
    with traffic.server(lab, "a2", ["tcp-echo", "--port", "5201", "--conns", "4"]), \
            traffic.server(lab, "a4", ["tcp-echo", "--port", "5201", "--conns", "4"]):
        t = traffic.probe(lab, "a1", ["tcp-send", "--to", vip, "--port", "5201", "--bytes", str(1 << 19)])
    assert t["identical"], t


def test_transitd_crash_keeps_forwarding(xdp_lab: Any) -> None:
    """SIGKILL d3's transitd during a ping: the attached programs keep forwarding; the new daemon
    adopts the pinned maps and programs and answers Get/Dump exactly like the old one."""
    lab = xdp_lab
    client = lab.dataplane.client(lab.droplet("d3"))
    before = client.dump()
    old_pid = client.status().pid
    ping = lab.popen("a1", ["ping", "-n", "-q", "-c", "60", "-i", "0.05", "10.10.1.11"],
                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(0.5)
    new_pid = lab.restart_daemon("d3", sig=signal.SIGKILL)
    out, _ = ping.communicate(timeout=30)
    assert " 60 received" in out or "60 packets received" in out, out
    st = lab.dataplane.client(lab.droplet("d3")).status()
    assert st.adopted and st.pid == new_pid != old_pid
    after = lab.dataplane.client(lab.droplet("d3")).dump()
    assert sorted(e.ip + str(e.vni) + e.veth for e in after.endpoints) == \
        sorted(e.ip + str(e.vni) + e.veth for e in before.endpoints)
    assert len(after.networks) == len(before.networks) and len(after.vpcs) == len(before.vpcs)
    progs = {p.name: list(p.interfaces) for p in st.programs}
    assert progs["cl_transit"] == ["eth0"] and "ve-a2" in progs["cl_agent"], progs
    assert traffic.ping(lab, "a2", "10.10.1.10", count=3) == 3
