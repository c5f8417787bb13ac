"""transitd against the real kernel: request validation (gRPC codes, one-line messages),
idempotent updates read back from the maps, the CLI, SIGTERM vs Shutdown(cleanup)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from centaurus.bpf import xdp
from centaurus.labs import nsutil
from centaurus.labs.netns import NetnsLab
from centaurus.labs.spec import load_spec
from centaurus.transitd.rpc import TransitError, pb

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "labs" / "perf-p2p.yaml"


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NetnsLab]:
    lab = NetnsLab(tmp_path_factory.mktemp("t"), {"dataplane": "mizar-xdp"})
    lab.up(load_spec(SPEC))
    try:
        yield lab
    finally:
        lab_id = lab.id
        lab.down()
        assert not nsutil.list_netns(f"cl-{lab_id}-")


def cl(lab: Any, droplet: str = "d1") -> Any:
    return lab.dataplane.client(lab.droplet(droplet))


def code(fn: Any) -> tuple[grpc.StatusCode | None, str]:
    with pytest.raises(TransitError) as ei:
        fn()
    assert "\n" not in str(ei.value)
    return ei.value.code, str(ei.value)


def test_bad_requests_get_clear_codes(lab: Any) -> None:
    c = cl(lab)
    bad = [
        ("UpdateVpc", pb.Vpc(vni=7, cidr="10.0.0.0/33"), grpc.StatusCode.INVALID_ARGUMENT,
         "not an IPv4 CIDR"),
        ("UpdateVpc", pb.Vpc(vni=0, cidr="10.0.0.0/16"), grpc.StatusCode.INVALID_ARGUMENT, "vni must be"),
        ("UpdateVpc", pb.Vpc(vni=7, cidr="10.0.0.0/16", dividers=["x"]), grpc.StatusCode.INVALID_ARGUMENT,
         "not an IPv4 address"),
        ("UpdateNet", pb.Net(vni=4242, cidr="10.1.0.0/24", bouncers=["10.198.0.2"]),
         grpc.StatusCode.FAILED_PRECONDITION, "UpdateVpc first"),
        ("UpdateNet", pb.Net(vni=3001, cidr="10.99.0.0/24", bouncers=["10.198.0.2"]),
         grpc.StatusCode.INVALID_ARGUMENT, "not inside VPC 3001"),
        ("UpdateNet", pb.Net(vni=3001, cidr="10.30.9.0/24", bouncers=[f"10.198.1.{i}" for i in range(17)]),
         grpc.StatusCode.INVALID_ARGUMENT, "at most 16 bouncers"),
        ("UpdateNet", pb.Net(vni=3001, cidr="10.30.9.0/24"), grpc.StatusCode.INVALID_ARGUMENT,
         "at least one bouncer"),
        ("UpdateEp", pb.Endpoint(vni=3001, ip="10.30.7.1", mac="02:00:00:00:00:01", host_ip="10.198.0.2"),
         grpc.StatusCode.FAILED_PRECONDITION, "UpdateNet first"),
        ("UpdateEp", pb.Endpoint(vni=3001, ip="10.30.1.77", mac="02:00:00:00:00:01", host_ip="10.198.0.1"),
         grpc.StatusCode.INVALID_ARGUMENT, "its veth is required"),
        ("UpdateEp", pb.Endpoint(vni=3001, ip="10.30.1.77", mac="02:00:00:00:00:01", host_ip="10.198.0.1",
                                 veth="ve-nope"), grpc.StatusCode.NOT_FOUND, "no interface 've-nope'"),
        ("UpdateEp", pb.Endpoint(vni=3001, ip="10.30.1.77", mac="zz", host_ip="10.198.0.2"),
         grpc.StatusCode.INVALID_ARGUMENT, "not a MAC"),
        ("UpdateEp", pb.Endpoint(vni=3001, ip="10.30.1.78", kind="scaled"), grpc.StatusCode.INVALID_ARGUMENT,
         "at least one backend"),
        ("GetEp", pb.EpKey(vni=3001, ip="10.30.1.99"), grpc.StatusCode.NOT_FOUND, "not programmed here"),
        ("GetVpc", pb.VpcKey(vni=4242), grpc.StatusCode.NOT_FOUND, "not programmed here"),
        ("DeleteVpc", pb.VpcKey(vni=3001), grpc.StatusCode.FAILED_PRECONDITION, "delete them first"),
        ("DeleteNet", pb.NetKey(vni=3001, cidr="10.30.1.0/24"), grpc.StatusCode.FAILED_PRECONDITION,
         "delete them first"),
        ("DeleteBouncer", pb.Bouncer(vni=3001, cidr="10.30.1.0/24", ip="10.198.0.1"),
         grpc.StatusCode.FAILED_PRECONDITION, "last bouncer"),
        ("UpdateDroplet", pb.Droplet(ip="10.198.0.1", mac="02:00:00:00:00:09"),
         grpc.StatusCode.INVALID_ARGUMENT, "own address"),
    ]
    for method, req, want, text in bad:
        got, msg = code(lambda m=method, r=req: c.call(m, r))
        assert got == want and text in msg, (method, got, msg)
    # nothing of the rejected requests reached the maps
    dump = c.dump()
    assert {v.vni for v in dump.vpcs} == {3001}
    assert {n.cidr for n in dump.networks} == {"10.30.1.0/24"}


def test_updates_are_idempotent_and_read_back(lab: Any) -> None:
    c = cl(lab)
    vpc = pb.Vpc(vni=3002, cidr="10.31.0.0/16", dividers=["10.198.0.2"])
    assert c.call("UpdateVpc", vpc).changed
    assert not c.call("UpdateVpc", vpc).changed
    got = c.call("GetVpc", pb.VpcKey(vni=3002))
    assert got.cidr == "10.31.0.0/16" and list(got.dividers) == ["10.198.0.2"]
    assert c.call("UpdateDivider", pb.Divider(vni=3002, ip="10.198.0.1")).changed
    assert not c.call("UpdateDivider", pb.Divider(vni=3002, ip="10.198.0.1")).changed
    assert list(c.call("GetDividers", pb.VpcKey(vni=3002)).ips) == ["10.198.0.2", "10.198.0.1"]
    net = pb.Net(vni=3002, cidr="10.31.4.0/24", bouncers=["10.198.0.2"], net_id=9)
    assert c.call("UpdateNet", net).changed and not c.call("UpdateNet", net).changed
    assert c.call("UpdateBouncer", pb.Bouncer(vni=3002, cidr="10.31.4.0/24", ip="10.198.0.1")).changed
    got_net = c.call("GetNet", pb.NetKey(vni=3002, cidr="10.31.4.77"))  # by an address inside it
    assert got_net.cidr == "10.31.4.0/24" and list(got_net.bouncers) == ["10.198.0.2", "10.198.0.1"]
    ep = pb.Endpoint(vni=3002, ip="10.31.4.5", mac="02:aa:bb:cc:dd:ee", host_ip="10.198.0.2")
    assert c.call("UpdateEp", ep).changed and not c.call("UpdateEp", ep).changed
    back = c.call("GetEp", pb.EpKey(vni=3002, ip="10.31.4.5"))
    assert (back.mac, back.host_ip, back.kind, back.ifindex, back.net_id) == \
        ("02:aa:bb:cc:dd:ee", "10.198.0.2", "simple", 0, 9)
    sc = pb.Endpoint(vni=3002, ip="10.31.4.100", kind="scaled", backends=["10.31.4.5", "10.31.4.6"])
    assert c.call("UpdateEp", sc).changed
    assert list(c.call("GetEp", pb.EpKey(vni=3002, ip="10.31.4.100")).backends) == ["10.31.4.5", "10.31.4.6"]
    # delete in dependency order
    for method, req in [("DeleteEp", pb.EpKey(vni=3002, ip="10.31.4.100")),
                        ("DeleteEp", pb.EpKey(vni=3002, ip="10.31.4.5")),
                        ("DeleteBouncer", pb.Bouncer(vni=3002, cidr="10.31.4.0/24", ip="10.198.0.1")),
                        ("DeleteNet", pb.NetKey(vni=3002, cidr="10.31.4.0/24")),
                        ("DeleteDivider", pb.Divider(vni=3002, ip="10.198.0.1")),
                        ("DeleteVpc", pb.VpcKey(vni=3002))]:
        assert c.call(method, req).changed, method
    assert 3002 not in {v.vni for v in c.dump().vpcs}


def test_cli(lab: Any) -> None:
    cent = [sys.executable, "-m", "centaurus.cli.main", "transit"]
    env = {**os.environ, "COLUMNS": "200"}
    common = ["--droplet", "d2", "--lab-state", str(lab.state_dir)]
    r = subprocess.run([*cent, "get-net", *common, "--vni", "3001", "--cidr", "10.30.1.0/24"],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["bouncers"] == ["10.198.0.1"]
    r = subprocess.run([*cent, "stats", *common, "--nonzero"], capture_output=True, text=True, env=env)
    assert r.returncode == 0 and json.loads(r.stdout)["maps"]["cl_endpoints"] == 1  # r1 only
    r = subprocess.run([*cent, "update-vpc", *common, "--vni", "0", "--cidr", "10.0.0.0/8"],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 1 and r.stderr.startswith("error: d2: UpdateVpc: INVALID_ARGUMENT: vni must be")
    assert r.stderr.count("\n") == 1
    r = subprocess.run([*cent, "status", "--droplet", "d9", "--lab-state", str(lab.state_dir)],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 1 and "no transitd for droplet 'd9'" in r.stderr
    sock = lab.droplet("d1").transitd.removeprefix("unix:")
    r = subprocess.run([*cent, "status", "--socket", sock], capture_output=True, text=True, env=env)
    assert r.returncode == 0 and json.loads(r.stdout)["droplet"] == "d1"


def test_cli_global_address_and_json_roundtrip(lab: Any) -> None:
    """``transit --address ADDR VERB -o json`` (options before the verb), and ``update-ep --json``
    with an endpoint exactly as ``dump`` printed it."""
    cent = [sys.executable, "-m", "centaurus.cli.main", "transit", "--address", lab.droplet("d2").transitd]
    r = subprocess.run([*cent, "dump", "-o", "json"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert set(doc) >= {"vpcs", "networks", "endpoints", "droplets"}
    entry = next(e for e in doc["endpoints"] if e["ip"] == "10.30.1.20")
    assert entry["veth"] == "ve-r1" and entry["host_ip"] == "10.198.0.2"
    r = subprocess.run([*cent, "update-ep", "--json", json.dumps(entry)], capture_output=True, text=True)
    assert r.returncode == 0 and json.loads(r.stdout)["changed"] is False, r.stdout + r.stderr
    r = subprocess.run([*cent, "update-ep", "--json", "[1]"], capture_output=True, text=True)
    assert r.returncode == 1 and "--json" in r.stderr
    r = subprocess.run([*cent, "stats", "-o", "yaml"], capture_output=True, text=True)
    assert r.returncode == 0 and "counters:" in r.stdout


def test_sigterm_leaves_the_dataplane_and_restart_adopts(lab: Any) -> None:
    d1 = lab.droplet("d1")
    pid = cl(lab).status().pid
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while nsutil.alive(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not nsutil.alive(pid)
    # programs stay attached, pins stay: the dataplane keeps forwarding without its daemon
    assert xdp.query("eth0", netns=d1.netns).prog_id
    assert lab.run("s1", ["ping", "-c2", "-i", "0.1", "-W1", "10.30.1.20"], check=False).returncode == 0
    lab.restart_daemon("d1")
    st = cl(lab).status()
    assert st.adopted and st.pid != pid


def test_shutdown_cleanup_detaches_and_unpins(lab: Any) -> None:
    d2 = lab.droplet("d2")
    pin_dir = Path(lab.dataplane.pin_dir(d2))
    assert (pin_dir / "cl_config").exists()
    assert xdp.query("ve-r1", netns=d2.netns).prog_id
    lab.dataplane.teardown_host(d2)
    assert not pin_dir.exists()
    assert xdp.query("eth0", netns=d2.netns).prog_id == 0
    assert xdp.query("ve-r1", netns=d2.netns).prog_id == 0
    assert not Path(d2.transitd.removeprefix("unix:")).exists()
