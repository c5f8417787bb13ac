"""The netns backend: naming, the lab handle API, idempotent down, crash safety, parallel labs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from centaurus import BPFFS_ROOT, PREFIX
from centaurus.labs import nsutil, topology
from centaurus.labs.base import LabError
from centaurus.labs.netns import NetnsLab
from centaurus.labs.spec import SpecError, load_spec
from centaurus.labs.state import LabState

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
DEFAULT = ROOT / "labs" / "default.yaml"


def _links(netns: str) -> list[str]:
    cp = subprocess.run(["ip", "-n", netns, "-j", "link", "show"], capture_output=True, text=True, check=True)
    return [ln["ifname"] for ln in json.loads(cp.stdout)]


def _gone(lab_id: str) -> None:
    assert not nsutil.list_netns(f"{PREFIX}{lab_id}-"), nsutil.list_netns(f"{PREFIX}{lab_id}-")
    assert not Path(f"{BPFFS_ROOT}/{lab_id}").exists()


def test_up_down_layout_and_handle(tmp_path: Path) -> None:
    lab = NetnsLab(tmp_path, {"dataplane": "bridge-vxlan"})
    t0 = time.monotonic()
    lab.up(load_spec(DEFAULT))
    up_s = time.monotonic() - t0
    try:
        lab_id = lab.id
        assert up_s < 10, f"lab up took {up_s:.1f} s"
        state = json.loads((tmp_path / "lab.json").read_text())
        assert state["phase"] == "up" and state["id"] == lab_id
        # every namespace carries the lab prefix and is recorded in the state file
        names = set(nsutil.list_netns(f"{PREFIX}{lab_id}-"))
        assert names == set(state["netns"])
        assert {h.name for h in lab.hosts("droplet")} == {"d1", "d2", "d3"}
        assert {h.name for h in lab.hosts("endpoint")} == {"a1", "a2", "a3", "a4", "b1"}
        assert [h.name for h in lab.hosts("switch")] == ["sw"]
        assert all(h.netns and h.netns.startswith(f"{PREFIX}{lab_id}-") for h in lab.hosts())
        # links live only inside lab namespaces; names fit in 15 characters
        assert set(_links(topology.netns_name(lab_id, "sw"))) >= {"br0", "p-d1", "p-d2", "p-d3"}
        d2 = _links(topology.netns_name(lab_id, "d2"))
        assert {"eth0", "ve-a1", "ve-a3"} <= set(d2) and all(len(n) <= 15 for n in d2)
        root_links = subprocess.run(["ip", "-j", "link"], capture_output=True, text=True).stdout
        assert "ve-a1" not in root_links and "p-d1" not in root_links
        # addresses and MTUs as specified
        out = lab.run("d1", ["ip", "-j", "addr", "show", "eth0"]).stdout
        eth0 = json.loads(out)[0]
        assert eth0["mtu"] == 1600 and eth0["addr_info"][0]["local"] == "10.199.0.11"
        out = lab.run("a1", ["ip", "-4", "-o", "addr", "show", "eth0"]).stdout
        assert "10.10.1.10/24" in out
        assert "default via 10.10.1.1" in lab.run("a1", ["ip", "route"]).stdout
        # the substrate works
        assert lab.run("d1", ["ping", "-c1", "-W1", "10.199.0.13"], check=False).returncode == 0
        # handle API
        info = lab.endpoint("a1")
        assert info.host == "d2" and info.vni == 1001 and info.netns == topology.netns_name(lab_id, "a1")
        assert lab.droplet("d3").ip == "10.199.0.13"
        assert lab.dataplane.name == "bridge-vxlan"
        assert lab.endpoint("lb1").extra["realised"] is False  # no scaled endpoints on the kernel path
        p = lab.popen("a2", ["sleep", "60"])
        assert p.poll() is None
        with pytest.raises(subprocess.CalledProcessError):
            lab.run("a1", ["false"])
        with pytest.raises(LabError, match="no host named 'zz'"):
            lab.run("zz", ["true"])
        st = lab.status()
        assert st["phase"] == "up" and all(st["netns"].values())
        with pytest.raises(LabError, match="already up"):
            NetnsLab(tmp_path, {"dataplane": "bridge-vxlan"}).up(load_spec(DEFAULT))
    finally:
        t1 = time.monotonic()
        lab.down()
        down_s = time.monotonic() - t1
    _gone(lab_id)
    assert p.poll() is not None, "a process started in the lab survived down"
    assert down_s < 10
    assert not (tmp_path / "lab.json").exists()
    lab.down()  # idempotent
    assert lab.status()["phase"] == "down"


def test_two_labs_in_parallel_do_not_collide(tmp_path: Path) -> None:
    a = NetnsLab(tmp_path / "a", {"dataplane": "bridge-vxlan"})
    b = NetnsLab(tmp_path / "b", {"dataplane": "bridge-vxlan"})
    spec = load_spec(DEFAULT)
    a.up(spec)
    try:
        b.up(spec)
        try:
            assert a.id != b.id
            for lab in (a, b):
                assert lab.run("a1", ["ping", "-c1", "-W2", "10.10.1.11"], check=False).returncode == 0
            b_down_id = b.id
        finally:
            b.down()
        _gone(b_down_id)
        assert a.run("a1", ["ping", "-c1", "-W2", "10.10.1.11"], check=False).returncode == 0
    finally:
        a_id = a.id
        a.down()
    _gone(a_id)


def test_down_after_kill9_of_the_lab_process(tmp_path: Path) -> None:
    """The process owning a mizar-xdp lab (with transitd daemons, pinned maps and a long-running
    process in an endpoint) is SIGKILLed; a fresh process removes everything from the state file."""
    script = tmp_path / "owner.py"
    script.write_text(
        "import sys, time\nfrom pathlib import Path\n"
        "from centaurus.labs.netns import NetnsLab\nfrom centaurus.labs.spec import load_spec\n"
        f"lab = NetnsLab(Path({str(tmp_path / 'lab')!r}), {{'dataplane': 'mizar-xdp'}})\n"
        f"lab.up(load_spec({str(DEFAULT)!r}))\n"
        "lab.popen('a1', ['sleep', '300'])\n"
        "print(lab.id, flush=True)\ntime.sleep(300)\n")
    owner = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        try:
            assert owner.stdout is not None
            lab_id = owner.stdout.readline().strip()
            assert lab_id, "owner did not bring the lab up"
            st = LabState.load(tmp_path / "lab")
            assert st is not None and len([p for p in st.procs if p.role == "transitd"]) == 3
            assert Path(f"{BPFFS_ROOT}/{lab_id}/d1/cl_config").exists()
            deadline = time.monotonic() + 10  # nsenter may not have joined the netns yet on a busy machine
            while not (sleeper := nsutil.netns_pids(topology.netns_name(lab_id, "a1"))):
                assert time.monotonic() < deadline, "the process started in a1 never appeared there"
                time.sleep(0.05)
        finally:
            owner.send_signal(signal.SIGKILL)
            owner.wait()
        assert all(nsutil.alive(p.pid, p.starttime) for p in st.procs), "daemons should outlive the owner"
        fresh = NetnsLab(tmp_path / "lab")
        assert fresh.status()["phase"] == "up"
        fresh.down()
        _gone(lab_id)
        assert not any(nsutil.alive(p.pid, p.starttime) for p in st.procs)
        assert not any(nsutil.alive(p) for p in sleeper)
    finally:  # whatever failed above, leave nothing behind
        NetnsLab(tmp_path / "lab").down()


def test_down_after_crash_during_creation(tmp_path: Path) -> None:
    """State written before creation: a lab that died half-way (some namespaces made, phase
    'creating') is removed completely."""
    spec = load_spec(DEFAULT)
    plan = topology.plan_lab(spec, "cr4s")
    st = LabState(id="cr4s", backend="netns", dataplane="bridge-vxlan", spec=spec.to_dict(),
                  netns=list(plan.netns.values()), bpffs=f"{BPFFS_ROOT}/cr4s")
    st.save(tmp_path)
    try:
        nsutil.ip_batch(plan.root[:5])  # the crash: only part of the topology exists
        assert nsutil.list_netns(f"{PREFIX}cr4s-")
        lab = NetnsLab(tmp_path)
        assert lab.status()["phase"] == "creating"
        lab.down()
        _gone("cr4s")
    finally:
        NetnsLab(tmp_path).down()


def test_bad_spec_and_bad_options_leave_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(DEFAULT.read_text().replace("mtu: 1600", "mtu: 1400"))
    with pytest.raises(SpecError, match=r"substrate\.mtu: 1400 is below 1550"):
        load_spec(bad)
    lab = NetnsLab(tmp_path / "x", {"dataplane": "nope"})
    with pytest.raises(Exception, match="unknown dataplane 'nope'"):
        lab.up(load_spec(DEFAULT))
    assert not (tmp_path / "x" / "lab.json").exists()
    lab = NetnsLab(tmp_path / "y", {"dataplane": "bridge-vxlan", "id": "bad-id!"})
    with pytest.raises(LabError, match="lab id"):
        lab.up(load_spec(DEFAULT))


def test_failed_up_cleans_up(tmp_path: Path) -> None:
    """A dataplane failure half-way through up removes what was made."""
    lab = NetnsLab(tmp_path, {"dataplane": "bridge-vxlan", "id": "fa1l", "bridge_nf": "7"})
    with pytest.raises(Exception, match="bridge_nf must be 0 or 1"):
        lab.up(load_spec(DEFAULT))
    _gone("fa1l")
    assert not (tmp_path / "lab.json").exists()


def test_cli_lab_up_status_down(tmp_path: Path) -> None:
    cent = [sys.executable, "-m", "centaurus.cli.main"]
    env = {**os.environ, "COLUMNS": "200"}
    up = subprocess.run([*cent, "lab", "up", "--spec", str(DEFAULT), "--dataplane", "bridge-vxlan",
                         "--state-dir", str(tmp_path)], capture_output=True, text=True, env=env, timeout=60)
    assert up.returncode == 0, up.stderr
    lab_id = up.stdout.split()[1]
    st = subprocess.run([*cent, "lab", "status", "--state-dir", str(tmp_path), "--json"], capture_output=True,
                        text=True, env=env)
    doc = json.loads(st.stdout)
    assert doc["id"] == lab_id and doc["phase"] == "up" and all(doc["netns"].values())
    down = subprocess.run([*cent, "lab", "down", "--state-dir", str(tmp_path)], capture_output=True,
                          text=True, env=env)
    assert down.returncode == 0 and f"lab {lab_id} removed" in down.stdout
    _gone(lab_id)
    again = subprocess.run([*cent, "lab", "status", "--state-dir", str(tmp_path)], capture_output=True,
                           text=True, env=env)
    assert again.returncode == 3 and "no lab up" in again.stdout
    bad = subprocess.run([*cent, "lab", "up", "--spec", str(tmp_path / "missing.yaml"), "--state-dir",
                          str(tmp_path)], capture_output=True, text=True, env=env)
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "cannot read" in bad.stderr
