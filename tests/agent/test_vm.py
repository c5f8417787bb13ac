"""VM pods on a real node agent (qemu, template restore): Running with the pod network's IP,
exec through the guest agent, powerSpec Shutdown/Running, Arktos actions, cleanup on delete."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import Cluster, gone, phase, pod, running, wait_pod

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
CIRROS = "download.cirros-cloud.net/0.3.5/cirros-0.3.5-x86_64-disk.img"


def vm_pod(name: str, node: str = "d1") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "nodeName": node,
            "terminationGracePeriodSeconds": 2,
            "restartPolicy": "Always",
            "virtualMachine": {
                "name": "vm",
                "image": CIRROS,
                "resources": {"limits": {"cpu": "1", "memory": "128Mi"}},
            },
        },
    }


def power(p: dict[str, Any]) -> str:
    return str(((p.get("status") or {}).get("virtualMachineStatus") or {}).get("powerState"))


def action(
    cluster: Cluster, ns: str, name: str, body: dict[str, Any], timeout: float = 120
) -> dict[str, Any]:
    r = cluster.api.request("POST", f"/api/v1/namespaces/{ns}/pods/{name}/action", body=body)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["kind"] == "Action" and created["spec"]["nodeName"] == "d1"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        a = cluster.api.get("actions", created["metadata"]["name"], namespace=ns)
        if (a.get("status") or {}).get("complete"):
            return a
        time.sleep(0.3)
    raise AssertionError(f"action {body['actionName']} did not complete")


def test_vm_pod_lifecycle_exec_power_and_actions(cluster: Cluster, ns: str) -> None:
    api = cluster.api
    api.create("pods", vm_pod("vm1"), namespace=ns)
    p = wait_pod(api, ns, "vm1", running, timeout=120, what="Running")
    vms = p["status"]["virtualMachineStatus"]
    assert vms["powerState"] == "Running" and vms["virtualMachineId"].startswith("qemu://")
    uid = p["metadata"]["uid"]
    p = wait_pod(
        api,
        ns,
        "vm1",
        lambda x: power(x) == "Running" and x["status"]["virtualMachineStatus"]["ready"],
        timeout=60,
        what="guest ready",
    )
    conds = {c["type"]: c["status"] for c in p["status"]["conditions"]}
    assert conds["Ready"] == "True"
    # the guest owns the pod IP: reachable from another pod
    ip = p["status"]["podIP"]
    api.create(
        "pods", pod("pinger", ["sh", "-c", f"ping -c 2 -W 3 {ip}"], node="d2", restart="Never"), namespace=ns
    )
    assert (
        wait_pod(api, ns, "pinger", phase("Succeeded", "Failed"), timeout=40)["status"]["phase"]
        == "Succeeded"
    )
    # exec through the guest agent (kubectl refuses pods without spec.containers client-side, as
    # upstream does; Arktos' own kubectl knows VM pods -- the API is what matters here)
    from kubernetes.stream import stream

    from .test_streams import _python_client

    out = stream(
        _python_client(cluster).connect_get_namespaced_pod_exec,
        "vm1",
        ns,
        command=["hostname"],
        stderr=True,
        stdin=False,
        stdout=True,
        tty=False,
    )
    assert out.strip() == "vm1"
    # powerSpec
    api.patch("pods", "vm1", {"spec": {"virtualMachine": {"powerSpec": "Shutdown"}}}, namespace=ns)
    p = wait_pod(api, ns, "vm1", lambda x: power(x) == "Shutdown", timeout=60, what="powered off")
    assert p["status"]["phase"] == "Running" and p["status"]["virtualMachineStatus"]["state"] == "Stopped"
    api.patch("pods", "vm1", {"spec": {"virtualMachine": {"powerSpec": "Running"}}}, namespace=ns)
    wait_pod(api, ns, "vm1", lambda x: power(x) == "Running" and running(x), timeout=90, what="powered on")
    # Arktos actions
    a = action(
        cluster,
        ns,
        "vm1",
        {
            "apiVersion": "v1",
            "kind": "CustomAction",
            "actionName": "Reboot",
            "rebootParams": {"delayInSeconds": 0},
        },
    )
    assert a["status"]["podActionStatus"]["rebootStatus"]["rebootSuccessful"] is True
    a = action(
        cluster,
        ns,
        "vm1",
        {
            "apiVersion": "v1",
            "kind": "CustomAction",
            "actionName": "Snapshot",
            "snapshotParams": {"snapshotLocation": "/var/tmp/"},
        },
    )
    snap = a["status"]["podActionStatus"]["snapshotStatus"]["snapshotID"]
    assert snap
    a = action(
        cluster,
        ns,
        "vm1",
        {
            "apiVersion": "v1",
            "kind": "CustomAction",
            "actionName": "Restore",
            "restoreParams": {"snapshotID": snap},
        },
    )
    assert a["status"]["podActionStatus"]["restoreStatus"]["restoreSuccessful"] is True
    wait_pod(
        api,
        ns,
        "vm1",
        lambda x: power(x) == "Running" and running(x),
        timeout=60,
        what="running after restore",
    )
    bad = api.request(
        "POST",
        f"/api/v1/namespaces/{ns}/pods/pinger/action",
        check=False,
        body={"apiVersion": "v1", "kind": "CustomAction", "actionName": "Reboot"},
    )
    assert bad.status_code == 400 and "VM pods only" in bad.text
    bad = api.request(
        "POST",
        f"/api/v1/namespaces/{ns}/pods/vm1/action",
        check=False,
        body={"apiVersion": "v1", "kind": "CustomAction", "actionName": "Explode"},
    )
    assert bad.status_code == 400
    # delete: qemu and the pod namespace go
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    qemu = [line for line in ps.splitlines() if "qemu-system" in line and uid[:8] in line]
    api.delete("pods", "vm1", namespace=ns)
    gone(api, ns, "vm1", timeout=40)
    assert not Path(f"/run/netns/cl-pod-{uid}").exists()
    for line in qemu:
        assert not Path(f"/proc/{line.split()[0]}").exists(), f"qemu survived: {line}"
