"""The ``vm`` runtime with real qemu (TCG here) and the guest bootstrap built.

All tests share the default template snapshot (built once per boot on /dev/shm by the first
``prepare()``); cold boots (~2-3 s of CPU each under TCG) are limited to the fallback tests.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from centaurus.runtimes.base import PodNetwork, RuntimeError_
from centaurus.runtimes.vm import VmRuntime
from centaurus.runtimes.vm.template import TemplateStore, template_key
from tests.runtimes.conftest import collect, delete_netns, make_netns, vm_pod, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.anyio]


async def guest(rt: Any, sb: Any, cmd: str) -> tuple[str, int]:
    ex = await rt.exec(sb, "vm1", ["sh", "-c", cmd])
    return (await ex.stdout.read()).decode(), await ex.wait()


def ping(netns_path: str, ip: str) -> bool:
    ns = netns_path.rsplit("/", 1)[-1]
    return (
        subprocess.run(
            ["ip", "netns", "exec", ns, "ping", "-c", "1", "-W", "2", ip], capture_output=True
        ).returncode
        == 0
    )


async def test_restore_start_identity_userdata_and_ping(vm_rt: VmRuntime, tmp_path: Path, netns: str) -> None:
    script = b"#!/bin/sh\necho userdata-ran > /tmp/ud-marker\n"
    spec = vm_pod(
        tmp_path,
        netns,
        name="vm-a",
        userData=base64.b64encode(script).decode(),
        publicKey="ssh-ed25519 AAAATEST user@test",
    )
    sb = await vm_rt.start(spec)
    assert sb.info["startMode"] == "restore" and sb.info["powerState"] == "running"
    assert sb.info["processRunningSeconds"] < 5
    await vm_rt.wait_ready(sb, 30)
    assert sb.info["guestReadySeconds"] is not None and sb.info["ready"]
    st = (await vm_rt.status(sb))[0]
    assert st.state == "running" and st.ready and st.container_id == f"qemu://{sb.uid}"
    out, rc = await asyncio.wait_for(guest(vm_rt, sb, "sleep 0.3; echo slept"), 20)  # timers fire
    assert (out, rc) == ("slept\n", 0)
    out, rc = await guest(
        vm_rt,
        sb,
        "hostname; cat /etc/instance-id; cat /sys/class/net/eth0/address; "
        "ip -o -4 addr show eth0; date +%s; cat /root/.ssh/authorized_keys; cat /run/cl-ident.rc",
    )
    lines = out.split("\n")
    assert rc == 0 and lines[0] == "vm-a" and lines[1] == f"i-{sb.uid}"
    assert lines[2] == sb.info["mac"] and "10.77.0.2/24" in lines[3]
    assert abs(int(lines[4]) - time.time()) < 10  # the template's clock was replaced
    assert "ssh-ed25519 AAAATEST" in lines[5]
    assert lines[6] == "0"  # identity applied by the fast helper, not the busybox fallback
    assert (await wait_for(lambda: guest(vm_rt, sb, "cat /tmp/ud-marker"), 10))[0] == "userdata-ran\n"
    assert ping(netns, "10.77.0.2")  # the pod netns reaches the guest at the pod IP
    out, rc = await guest(vm_rt, sb, "ping -c 1 -W 2 10.77.0.1")  # and the guest its gateway
    assert rc == 0, out
    await guest(
        vm_rt, sb, "mkdir -p /tmp/www; echo guest-page > /tmp/www/index.html; httpd -p 8080 -h /tmp/www"
    )
    r, w = await vm_rt.port_forward(sb, 8080)
    w.write(b"GET / HTTP/1.0\r\n\r\n")
    await w.drain()
    assert b"guest-page" in await r.read()
    w.close()
    with pytest.raises(RuntimeError_) as ei:
        await vm_rt.port_forward(sb, 22)  # nothing listens: refused (not hanging)
    assert ei.value.reason == "PortForwardError"


async def test_clones_get_distinct_identity_rng_and_mac(vm_rt: VmRuntime, tmp_path: Path) -> None:
    a = await vm_rt.start(vm_pod(tmp_path, None, name="clone-a", ip=None))
    b = await vm_rt.start(vm_pod(tmp_path, None, name="clone-b", ip=None))
    await vm_rt.wait_ready(a, 30)
    await vm_rt.wait_ready(b, 30)
    assert a.info["templateKey"] == b.info["templateKey"]
    cmd = "hostname; cat /sys/class/net/eth0/address; head -c 16 /dev/urandom | od -An -tx1"
    (oa, _), (ob, _) = await guest(vm_rt, a, cmd), await guest(vm_rt, b, cmd)
    la, lb = oa.split("\n"), ob.split("\n")
    assert (la[0], lb[0]) == ("clone-a", "clone-b")
    assert la[1] != lb[1] and la[2] != lb[2]
    stats = await vm_rt.stats(a)
    assert stats["vm1" if "vm1" in stats else "clone-a"]["memory_bytes"] > 0


async def test_vm_takes_over_the_pod_interface(vm_rt: VmRuntime, tmp_path: Path) -> None:
    """With the agent's network hook done (eth0 + pod IP in the pod netns, the peer in a "host"
    netns), the guest becomes the endpoint: reachable at the pod IP from outside."""
    pod_ns, host_ns = make_netns("vp"), make_netns("vh")
    try:
        ip = lambda *a: subprocess.run(["ip", *a], check=True)  # noqa: E731
        peer = f"cl-vh{os.urandom(2).hex()}"
        ip("-n", host_ns, "link", "add", peer, "type", "veth", "peer", "name", "eth0", "netns", pod_ns)
        ip("-n", host_ns, "addr", "add", "10.88.0.1/24", "dev", peer)
        ip("-n", host_ns, "link", "set", peer, "up")
        ip("-n", pod_ns, "addr", "add", "10.88.0.5/24", "dev", "eth0")
        ip("-n", pod_ns, "link", "set", "eth0", "up")
        ip("-n", pod_ns, "route", "add", "default", "via", "10.88.0.1")
        mac = json.loads(
            subprocess.run(
                ["ip", "-n", pod_ns, "-j", "link", "show", "eth0"], capture_output=True, check=True
            ).stdout
        )[0]["address"]
        spec = vm_pod(tmp_path, f"/var/run/netns/{pod_ns}", ip=None)
        spec.network = PodNetwork(ip="10.88.0.5", prefix_len=24, gateway="10.88.0.1")
        sb = await vm_rt.start(spec)
        await vm_rt.wait_ready(sb, 30)
        assert sb.info["ip"] == "10.88.0.5" and sb.info["mac"] == mac
        assert ping(f"/var/run/netns/{host_ns}", "10.88.0.5")
        out, rc = await guest(vm_rt, sb, "ping -c 1 -W 2 10.88.0.1")
        assert rc == 0, out
        assert ping(f"/var/run/netns/{pod_ns}", "10.88.0.5")  # via the link-local on-link route
        await vm_rt.remove(sb)
        addrs = subprocess.run(
            ["ip", "-n", pod_ns, "-j", "addr", "show", "eth0"], capture_output=True, check=True
        ).stdout
        eth0 = json.loads(addrs)[0]
        assert eth0["address"] == mac and any(a.get("local") == "10.88.0.5" for a in eth0["addr_info"])
        links = subprocess.run(["ip", "-n", pod_ns, "-o", "link"], capture_output=True, text=True).stdout
        assert "cl-vmtap" not in links and "cl-vmbr" not in links
    finally:
        delete_netns(pod_ns)
        delete_netns(host_ns)


async def test_actions_change_power_state(vm_rt: VmRuntime, tmp_path: Path, netns: str) -> None:
    sb = await vm_rt.start(vm_pod(tmp_path, netns))
    await vm_rt.wait_ready(sb, 30)
    await guest(vm_rt, sb, "echo before > /tmp/state")
    r = await vm_rt.action(sb, "pause", {})
    assert r["powerState"] == "paused" and (await vm_rt.status(sb))[0].ready is False
    r = await vm_rt.action(sb, "resume", {})
    assert r["powerState"] == "running"
    r = await vm_rt.action(sb, "snapshot", {"snapshotName": "s1"})
    assert r["snapshotID"] == "s1" and r["bytes"] > 0 and r["powerState"] == "running"
    await guest(vm_rt, sb, "echo after > /tmp/state")
    r = await vm_rt.action(sb, "restore", {"snapshotID": "s1"})
    assert r["powerState"] == "running"
    assert (await guest(vm_rt, sb, "cat /tmp/state"))[0] == "before\n"  # memory state from the snapshot
    assert abs(int((await guest(vm_rt, sb, "date +%s"))[0]) - time.time()) < 10  # clock re-seeded
    r = await vm_rt.action(sb, "stop", {})
    st = (await vm_rt.status(sb))[0]
    assert r["powerState"] == "shutdown" and r["vmState"] == "stopped"
    assert (st.state, st.reason, st.exit_code) == ("terminated", "VmShutdown", 0)
    assert sb.info["powerSpec"] == "Shutdown"  # user stop: not for restartPolicy
    with pytest.raises(RuntimeError_):
        await vm_rt.exec(sb, "vm1", ["true"])
    r = await vm_rt.action(sb, "start", {})
    assert r["powerState"] == "running" and r["startMode"] == "restore"
    assert (await guest(vm_rt, sb, "cat /tmp/state 2>/dev/null || echo fresh"))[0] == "fresh\n"
    r = await vm_rt.action(sb, "reboot", {"timeout": 90})
    assert r["powerState"] == "running" and (await vm_rt.status(sb))[0].ready
    assert (await guest(vm_rt, sb, "hostname"))[0] == "vm1\n"  # identity re-applied after the reboot
    with pytest.raises(RuntimeError_) as ei:
        await vm_rt.action(sb, "restore", {"snapshotID": "nope"})
    assert ei.value.reason == "SnapshotNotFound"
    with pytest.raises(RuntimeError_) as ei:
        await vm_rt.action(sb, "teleport", {})
    assert ei.value.reason == "InvalidAction"
    await guest(vm_rt, sb, "echo console-marker > /dev/console")  # ttyS0 is the pod log
    log = await wait_for(lambda: _log_has(vm_rt, sb, b"console-marker"), timeout=5)
    assert log


async def _log_has(rt: VmRuntime, sb: Any, needle: bytes) -> bool:
    return needle in await collect(rt.logs(sb, "vm1"))


async def test_cold_boot_fallback(tmp_path: Path) -> None:
    # 1) no template at all: cold boot
    rt = VmRuntime(tmp_path / "n1", {"template_dir": tmp_path / "no-templates", "build_template": False})
    await rt.prepare()
    try:
        sb = await rt.start(vm_pod(tmp_path, None, ip=None))
        assert sb.info["startMode"] == "cold"
        await rt.wait_ready(sb, 60)
        assert sb.info["guestReadySeconds"] > sb.info["processRunningSeconds"]
        assert (await guest(rt, sb, "hostname"))[0] == "vm1\n"
        # the guest's timers fire (a kernel without a working tick device hangs in sleep)
        out, rc = await asyncio.wait_for(guest(rt, sb, "sleep 0.3; echo slept"), 20)
        assert (out, rc) == ("slept\n", 0)
        await rt.remove(sb)
    finally:
        await rt.close()
    # 2) a template whose state is garbage: the restore fails, the runtime falls back to a cold boot
    store = TemplateStore(tmp_path / "broken")
    image = rt.images.resolve("cirros", "vm")
    d = store.root / template_key(image, 128, 1, rt.accel)
    d.mkdir(parents=True)
    (d / "ram").write_bytes(b"\0" * 4096)
    (d / "state").write_bytes(b"not a migration stream")
    (d / "meta.json").write_text("{}")
    rt = VmRuntime(tmp_path / "n2", {"template_dir": store.root, "build_template": False})
    await rt.prepare()
    try:
        sb = await rt.start(vm_pod(tmp_path, None, ip=None))
        assert sb.info["startMode"] == "cold"
        await rt.wait_ready(sb, 60)
        await rt.remove(sb)
    finally:
        await rt.close()


async def test_rediscovery_and_cleanup(tmp_path: Path, netns: str) -> None:
    rt1 = VmRuntime(tmp_path / "node")
    await rt1.prepare()
    sb = await rt1.start(vm_pod(tmp_path, netns))
    await rt1.wait_ready(sb, 30)
    await rt1.action(sb, "snapshot", {"snapshotName": "keep"})
    pid = sb.info["qemuPid"]
    await rt1.close()  # agent restart: the VM keeps running
    rt2 = VmRuntime(tmp_path / "node")
    await rt2.prepare()
    try:
        found = {s.uid: s for s in await rt2.sandboxes()}
        assert sb.uid in found and found[sb.uid].info["qemuPid"] == pid
        assert (await guest(rt2, found[sb.uid], "hostname"))[0] == "vm1\n"
        rec = rt2._recs[sb.uid]
        files = [Path(rec.qmp_sock), Path(rec.ctl_sock), Path(rec.snapshots["keep"]["path"])]
        assert all(f.exists() for f in files)
        await rt2.remove(found[sb.uid])
        await rt2.remove(found[sb.uid])  # idempotent
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
        assert not any(f.exists() for f in files)
        assert not (rt2.vms_dir / sb.uid).exists()
        links = subprocess.run(
            ["ip", "-n", netns.rsplit("/", 1)[-1], "-o", "link"], capture_output=True, text=True
        ).stdout
        assert "cl-vmtap" not in links and "cl-vmbr" not in links
        assert await rt2.sandboxes() == []
    finally:
        await rt2.close()


async def test_bad_vm_specs_fail_clearly(vm_rt: VmRuntime, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError_) as ei:
        await vm_rt.start(vm_pod(tmp_path, None, image="windows-server-2022"))
    assert ei.value.reason == "ErrImagePull" and "windows-server-2022" in ei.value.message
    spec = vm_pod(tmp_path, None)
    spec.vm = {"name": "x", "image": "cirros", "powerSpec": "Hibernating"}
    with pytest.raises(RuntimeError_) as ei:
        await vm_rt.start(spec)
    assert ei.value.reason == "InvalidVmSpec"
    spec.vm = {"name": "x", "image": "cirros", "resources": {"limits": {"memory": "lots"}}}
    with pytest.raises(RuntimeError_) as ei:
        await vm_rt.start(spec)
    assert ei.value.reason == "InvalidVmSpec"
    assert await vm_rt.sandboxes() == []
