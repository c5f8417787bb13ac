"""The remote (ssh) backend, run for real against network namespaces standing in for hosts
(``transport=netns``): testinfra host checks, endpoints and transitd created over the transport,
both dataplanes forwarding, and nothing left on the hosts after ``down``. The ssh hop itself cannot
run here (no sshd); its command lines are checked as data."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from centaurus.labs import nsutil, traffic
from centaurus.labs.base import LabError
from centaurus.labs.remote import RemoteHost, SshTransport, load_inventory, remote_veth
from centaurus.labs.spec import load_spec
from centaurus.labs.ssh import SshLab

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "labs" / "default.yaml"


@pytest.fixture
def fake_hosts(tmp_path: Path) -> Iterator[tuple[Path, list[str]]]:
    """One netns per droplet with its substrate address on ``eth1`` (behind a switch netns) and a
    management veth to this namespace; an inventory pointing at them."""
    spec = load_spec(SPEC)
    tag = secrets.token_hex(2)
    x = int(tag, 16) % 200 + 20
    sw = f"cl-fh{tag}-sw"
    names = [sw] + [f"cl-fh{tag}-{d.name}" for d in spec.droplets]
    hosts: dict[str, Any] = {}
    try:
        lines = [f"netns add {n}" for n in names]
        for i, d in enumerate(spec.droplets):
            ns = f"cl-fh{tag}-{d.name}"
            lines += [f"link add name eth1 netns {ns} mtu 1600 type veth peer name p-{d.name} netns {sw} "
                      "mtu 1600",
                      f"link add name cl-m{tag}{i} type veth peer name mgmt netns {ns}",
                      f"addr add 10.197.{x}.{4 * i + 1}/30 dev cl-m{tag}{i}", f"link set cl-m{tag}{i} up"]
            hosts[d.name] = {"address": f"10.197.{x}.{4 * i + 2}", "iface": "eth1", "netns": ns,
                             "python": sys.executable, "transitd_port": 50151}
        nsutil.ip_batch(lines)
        nsutil.ip_batch(["link set lo up", "link add br0 type bridge stp_state 0 forward_delay 0"]
                        + [f"link set p-{d.name} master br0 up" for d in spec.droplets] + ["link set br0 up"],
                        netns=sw)
        for i, d in enumerate(spec.droplets):
            nsutil.ip_batch(["link set lo up", f"addr add {d.ip}/24 dev eth1", "link set eth1 up",
                             f"addr add 10.197.{x}.{4 * i + 2}/30 dev mgmt", "link set mgmt up"],
                            netns=f"cl-fh{tag}-{d.name}")
        from centaurus.labs.xdppeers import PassProgram

        prog = PassProgram()  # the fake switch's ports receive XDP_TX/redirected frames
        prog.attach(sw, [f"p-{d.name}" for d in spec.droplets])
        prog.close()
        inv = tmp_path / "inventory.yaml"
        inv.write_text(yaml.safe_dump({"hosts": hosts}))
        yield inv, names
    finally:
        nsutil.ip_batch([f"netns del {n}" for n in names if nsutil.netns_exists(n)], force=True)


def _host_state(ns: str) -> dict[str, Any]:
    links = json.loads(subprocess.run(["ip", "-n", ns, "-j", "-d", "link", "show"], capture_output=True,
                                      text=True, check=True).stdout)
    return {"links": {ln["ifname"] for ln in links}, "xdp": {ln["ifname"] for ln in links if "xdp" in ln},
            "pids": nsutil.netns_pids(ns)}


@pytest.mark.integration
@pytest.mark.parametrize("dataplane", ["mizar-xdp", "bridge-vxlan"])
def test_remote_lab_over_fake_hosts(fake_hosts: tuple[Path, list[str]], tmp_path: Path,
                                    dataplane: str) -> None:
    inv, hostns = fake_hosts
    before = {n: _host_state(n) for n in hostns[1:]}
    lab = SshLab(tmp_path / "lab", {"inventory": str(inv), "transport": "netns", "dataplane": dataplane})
    lab.up(load_spec(SPEC))
    try:
        lab_id = lab.id
        assert {h.name for h in lab.hosts("droplet")} == {"d1", "d2", "d3"}
        a2 = lab.endpoint("a2")
        assert a2.veth == remote_veth(lab_id, "a2") and a2.veth in _host_state(hostns[3])["links"]
        assert traffic.ping(lab, "a1", a2.ip, count=3) == 3
        assert traffic.ping(lab, "a3", lab.endpoint("a4").ip, count=3) == 3  # across networks
        assert traffic.ping(lab, "b1", a2.ip, count=2, timeout=0.5) == 0  # other tenant
        t = traffic.tcp_transfer(lab, "a1", "a2", a2.ip, nbytes=1 << 18)
        assert t["identical"], t
        st = lab.status()
        assert all(st["netns"].values()) and all(p["alive"] for p in st["processes"])
        if dataplane == "mizar-xdp":
            assert len(st["processes"]) == 3
            assert lab.stats("d2")["tx_encap"] > 0
            assert "eth1" in _host_state(hostns[1])["xdp"]
        else:
            assert lab.stats("d2")["tx_encap"] > 0
        # a fresh process can take the lab down from the state file
        again = SshLab(tmp_path / "lab")
        assert again.status()["phase"] == "up"
    finally:
        SshLab(tmp_path / "lab").down()
    assert not (tmp_path / "lab" / "lab.json").exists()
    assert not nsutil.list_netns(f"cl-{lab_id}-")
    assert not Path(f"/sys/fs/bpf/centaurus/{lab_id}").exists()
    for n in hostns[1:]:  # the hosts are as they were: no links, programs or processes of ours
        now = _host_state(n)
        assert now["links"] == before[n]["links"], (n, now["links"] ^ before[n]["links"])
        assert not now["xdp"] and not now["pids"], (n, now)


@pytest.mark.integration
def test_host_checks_report_every_problem(fake_hosts: tuple[Path, list[str]], tmp_path: Path) -> None:
    inv, _ = fake_hosts
    doc = yaml.safe_load(inv.read_text())
    doc["hosts"]["d2"]["iface"] = "eth9"
    doc["hosts"]["d3"]["python"] = "/nonexistent/python"
    inv.write_text(yaml.safe_dump(doc))
    lab = SshLab(tmp_path / "lab", {"inventory": str(inv), "transport": "netns", "dataplane": "mizar-xdp"})
    with pytest.raises(LabError) as ei:
        lab.up(load_spec(SPEC))
    msg = str(ei.value)
    assert "\n" not in msg and msg.startswith("host checks failed: ")
    assert "d2: no substrate interface eth9" in msg and "d3: /nonexistent/python cannot import" in msg
    assert not (tmp_path / "lab" / "lab.json").exists()


def test_inventory_errors(tmp_path: Path) -> None:
    p = tmp_path / "inv.yaml"
    p.write_text("hosts: {d1: {address: 10.0.0.1, colour: red}}\n")
    with pytest.raises(LabError, match=r"hosts\.d1: unknown key 'colour'"):
        load_inventory(p)
    p.write_text("hosts: {d1: {iface: eth1}}\n")
    with pytest.raises(LabError, match=r"hosts\.d1: missing 'address'"):
        load_inventory(p)
    p.write_text("defaults: {user: ops, key: ~/.ssh/k}\nhosts: {d1: {address: 10.0.0.1}}\n")
    h = load_inventory(p)["d1"]
    assert (h.user, h.iface, h.transitd_port) == ("ops", "eth1", 50151)
    with pytest.raises(LabError, match="needs an inventory"):
        SshLab(tmp_path / "lab", {}).up(load_spec(SPEC))


def test_ssh_command_lines() -> None:
    t = SshTransport()
    root = RemoteHost(name="d1", address="192.0.2.1", port=2222, key="/k")
    argv = t.argv(root, ["ip", "netns", "add", "cl-ab12-a1"])
    assert argv[:2] == ["ssh", "-o"] and "-p" in argv and argv[argv.index("-p") + 1] == "2222"
    assert argv[-2:] == ["root@192.0.2.1", "ip netns add cl-ab12-a1"] and "-i" in argv
    ops = RemoteHost(name="d1", address="192.0.2.1", user="vagrant", ssh_config="/c", ssh_host="d1")
    argv = t.argv(ops, ["sh", "-c", "echo 'a b'"])
    assert argv[-2] == "vagrant@d1" and argv[-1] == "sudo -n sh -c 'echo '\"'\"'a b'\"'\"''"
    assert argv[argv.index("-F") + 1] == "/c"
    assert len(remote_veth("ab12", "a-very-long-endpoint")) <= 15
