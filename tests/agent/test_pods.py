"""Pods on real node agents (real crun, real netns lab): lifecycle, status, restartPolicy and
back-off, bad input, deletion cleanup, reconciliation after an agent crash, the flat network."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from centaurus.client.rest import ApiError

from .conftest import Cluster, gone, phase, pod, running, wait_pod

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


def cstat(p: dict[str, Any], i: int = 0) -> dict[str, Any]:
    return ((p.get("status") or {}).get("containerStatuses") or [{}])[i]


def test_nodes_are_registered_with_labels_capacity_and_leases(cluster: Cluster) -> None:
    nodes = {n["metadata"]["name"]: n for n in cluster.api.list("nodes")["items"]}
    assert {"d1", "d2"} <= set(nodes)
    d1 = nodes["d1"]
    labels = d1["metadata"]["labels"]
    assert labels["topology.kubernetes.io/zone"] == "az1" and labels["centaurus.io/site-type"] == "cloud"
    assert labels["kubernetes.io/hostname"] == "d1"
    st = d1["status"]
    assert {c["type"]: c["status"] for c in st["conditions"]}["Ready"] == "True"
    assert {"cpu", "memory", "pods"} <= set(st["allocatable"])
    assert {"type": "InternalIP", "address": "10.198.0.11"} in st["addresses"]
    assert d1["spec"]["podCIDR"] != nodes["d2"]["spec"]["podCIDR"]
    lease = cluster.api.get(
        "leases", "d1", namespace="kube-node-lease", group_version="coordination.k8s.io/v1"
    )
    assert lease["spec"]["holderIdentity"] == "d1" and lease["spec"]["leaseDurationSeconds"] == 40


def test_pod_runs_and_reports_status(cluster: Cluster, ns: str) -> None:
    cluster.api.create("pods", pod("web"), namespace=ns)
    p = wait_pod(cluster.api, ns, "web", running, what="Running")
    st = p["status"]
    node = cluster.api.get("nodes", "d1")
    import ipaddress

    assert ipaddress.ip_address(st["podIP"]) in ipaddress.ip_network(node["spec"]["podCIDR"])
    assert st["podIPs"] == [{"ip": st["podIP"]}] and st["hostIP"] == "10.198.0.11"
    conds = {c["type"]: c["status"] for c in st["conditions"]}
    assert conds == {
        "PodScheduled": "True",
        "Initialized": "True",
        "ContainersReady": "True",
        "Ready": "True",
        "PodReadyToStartContainers": "True",
    }
    c = cstat(p)
    assert c["ready"] and c["started"] and "running" in c["state"] and c["restartCount"] == 0
    assert c["containerID"].startswith("crun://") and "busybox" in c["image"] and c["imageID"]
    assert st["startTime"] and st["qosClass"] == "BestEffort"


@pytest.mark.parametrize(("code", "want"), [(0, "Succeeded"), (3, "Failed")])
def test_exit_codes_end_the_pod(cluster: Cluster, ns: str, code: int, want: str) -> None:
    cluster.api.create(
        "pods", pod("once", ["sh", "-c", f"sleep 0.2; exit {code}"], restart="Never"), namespace=ns
    )
    p = wait_pod(cluster.api, ns, "once", phase("Succeeded", "Failed"), what="finished")
    assert p["status"]["phase"] == want
    term = cstat(p)["state"]["terminated"]
    assert term["exitCode"] == code and term["reason"] == ("Completed" if code == 0 else "Error")
    conds = {c["type"]: c for c in p["status"]["conditions"]}
    assert conds["Ready"]["status"] == "False" and conds["Ready"]["reason"] == "PodCompleted"


def test_on_failure_restarts_only_failures(cluster: Cluster, ns: str) -> None:
    cluster.api.create("pods", pod("ok", ["sh", "-c", "exit 0"], restart="OnFailure"), namespace=ns)
    cluster.api.create(
        "pods", pod("bad", ["sh", "-c", "sleep 0.3; exit 2"], restart="OnFailure"), namespace=ns
    )
    ok = wait_pod(cluster.api, ns, "ok", phase("Succeeded"), what="Succeeded")
    assert cstat(ok)["restartCount"] == 0
    bad = wait_pod(
        cluster.api, ns, "bad", lambda p: cstat(p).get("restartCount", 0) >= 2, what="restarted twice"
    )
    assert bad["status"]["phase"] == "Running"
    assert cstat(bad)["lastState"]["terminated"]["exitCode"] == 2


def test_crash_loop_backs_off_like_kubelet(cluster: Cluster, ns: str) -> None:
    """restartPolicy Always, container exits at once: restarted immediately, then after base,
    2x base, 4x base (base = 1 s in this cluster), shown as CrashLoopBackOff with lastState."""
    cluster.api.create("pods", pod("crash", ["sh", "-c", "echo crashing; exit 1"]), namespace=ns)
    seen: dict[int, float] = {}
    crashloop = None
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline and len(seen) < 5:
        p = cluster.api.get("pods", "crash", namespace=ns)
        c = cstat(p)
        seen.setdefault(int(c.get("restartCount", 0)), time.monotonic())
        waiting = (c.get("state") or {}).get("waiting") or {}
        if waiting.get("reason") == "CrashLoopBackOff":
            crashloop = p
        time.sleep(0.05)
    assert len(seen) >= 5, f"restarts seen: {sorted(seen)}"
    assert crashloop is not None, "never reported CrashLoopBackOff"
    c = cstat(crashloop)
    assert "back-off" in c["state"]["waiting"]["message"]
    assert c["lastState"]["terminated"]["exitCode"] == 1
    assert crashloop["status"]["phase"] == "Running"
    gaps = [seen[i + 1] - seen[i] for i in range(1, 4)]  # after restarts 1, 2, 3
    assert gaps[0] >= 0.8 and gaps[1] >= 1.6 and gaps[2] >= 3.2, f"back-off gaps {gaps}"
    events = cluster.api.list("events", namespace=ns)["items"]
    assert any(e["reason"] == "BackOff" and e["involvedObject"]["name"] == "crash" for e in events)


def test_missing_image_fails_the_pod_clearly(cluster: Cluster, ns: str) -> None:
    cluster.api.create("pods", pod("noimg", image="registry.example/nosuch:1.0"), namespace=ns)
    p = wait_pod(cluster.api, ns, "noimg", phase("Failed"), what="Failed")
    st = p["status"]
    assert st["reason"] == "ErrImagePull"
    assert "nosuch" in st["message"]
    assert cstat(p)["state"]["waiting"]["reason"] == "ErrImagePull"
    events = cluster.api.list("events", namespace=ns)["items"]
    assert any(e["reason"] == "ErrImagePull" and e["type"] == "Warning" for e in events), events


def test_init_containers_run_first_and_a_failed_one_fails_the_pod(cluster: Cluster, ns: str) -> None:
    good = pod("init-ok")
    good["spec"]["initContainers"] = [
        {"name": "setup", "image": "busybox:1.36", "command": ["sh", "-c", "exit 0"]}
    ]
    bad = pod("init-bad", restart="Never")
    bad["spec"]["initContainers"] = [
        {"name": "setup", "image": "busybox:1.36", "command": ["sh", "-c", "exit 5"]}
    ]
    cluster.api.create("pods", good, namespace=ns)
    cluster.api.create("pods", bad, namespace=ns)
    p = wait_pod(cluster.api, ns, "init-ok", running, what="Running")
    init = p["status"]["initContainerStatuses"][0]
    assert init["state"]["terminated"]["exitCode"] == 0
    p = wait_pod(cluster.api, ns, "init-bad", phase("Failed"), what="Failed")
    assert p["status"]["initContainerStatuses"][0]["state"]["terminated"]["exitCode"] == 5
    assert "waiting" in cstat(p)["state"]


def _cgroup_dirs(uid: str) -> list[Path]:
    return [p for p in Path("/sys/fs/cgroup").glob(f"*/cl-*/{uid}") if p.is_dir()]


def test_delete_is_graceful_and_cleans_everything(cluster: Cluster, ns: str) -> None:
    cluster.api.create("pods", pod("bye"), namespace=ns)
    p = wait_pod(cluster.api, ns, "bye", running, what="Running")
    uid = p["metadata"]["uid"]
    netns = f"cl-pod-{uid}"
    pids = subprocess.run(
        ["ip", "netns", "pids", netns], capture_output=True, text=True, check=True
    ).stdout.split()
    assert pids, "no process in the pod's network namespace"
    assert Path(f"/run/netns/{netns}").exists() and _cgroup_dirs(uid)
    droplet = cluster.droplet_netns("d1")
    before = subprocess.run(["ip", "-n", droplet, "-o", "link"], capture_output=True, text=True).stdout
    host_if = next(w.split("@")[0] for w in before.split() if w.startswith("clv"))  # some pod's veth
    t0 = time.monotonic()
    cluster.api.delete("pods", "bye", namespace=ns)
    gone(cluster.api, ns, "bye", timeout=20)
    took = time.monotonic() - t0
    assert took < 10, f"graceful delete took {took:.1f} s"
    assert not Path(f"/run/netns/{netns}").exists()
    assert not _cgroup_dirs(uid)
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists(), f"pid {pid} of the pod survived"
    after = subprocess.run(["ip", "-n", droplet, "-o", "link"], capture_output=True, text=True).stdout
    assert after.count("clv") == before.count("clv") - 1, (host_if, after)


def test_pods_on_two_nodes_reach_each_other(cluster: Cluster, ns: str) -> None:
    cluster.api.create(
        "pods", pod("srv", ["nc", "-ll", "-p", "8080", "-e", "echo", "TOKEN77"], node="d2"), namespace=ns
    )
    srv = wait_pod(cluster.api, ns, "srv", running, what="Running")
    ip = srv["status"]["podIP"]
    probe = [
        "sh",
        "-c",
        f"for i in 1 2 3 4 5; do nc -w 2 {ip} 8080 </dev/null | grep -q TOKEN77 && "
        f"ping -c 1 -W 2 {ip} && exit 0; sleep 1; done; exit 1",
    ]
    cluster.api.create("pods", pod("cli", probe, node="d1", restart="Never"), namespace=ns)
    p = wait_pod(cluster.api, ns, "cli", phase("Succeeded", "Failed"), timeout=40, what="finished")
    assert p["status"]["phase"] == "Succeeded", cluster.api.request(
        "GET", f"/api/v1/namespaces/{ns}/pods/cli/log"
    ).text


def test_agent_restart_adopts_running_pods_and_removes_orphans(cluster: Cluster, ns: str) -> None:
    api, fleet = cluster.api, cluster.fleet
    api.create("pods", pod("keep", node="d2"), namespace=ns)
    api.create("pods", pod("orphan", node="d2"), namespace=ns)
    keep = wait_pod(api, ns, "keep", running, what="Running")
    orphan = wait_pod(api, ns, "orphan", running, what="Running")
    orphan_ns = f"cl-pod-{orphan['metadata']['uid']}"
    fleet.kill("d2")
    # while the agent is dead: one pod goes away for good, another one is bound to the node
    api.request(
        "DELETE",
        f"/api/v1/namespaces/{ns}/pods/orphan",
        body={"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0},
    )
    api.create("pods", pod("late", node="d2"), namespace=ns)
    assert Path(f"/run/netns/{orphan_ns}").exists()
    proc = fleet.restart("d2")
    fleet.wait_started([proc], timeout=60)
    late = wait_pod(api, ns, "late", running, what="Running after the restart")
    assert late["status"]["podIP"] != keep["status"]["podIP"]
    deadline = time.monotonic() + 20
    while Path(f"/run/netns/{orphan_ns}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/run/netns/{orphan_ns}").exists(), "the orphan's network namespace survived"
    now = api.get("pods", "keep", namespace=ns)
    assert cstat(now)["containerID"] == cstat(keep)["containerID"] and cstat(now)["restartCount"] == 0
    assert running(now)
    api.delete("pods", "keep", namespace=ns)
    gone(api, ns, "keep", timeout=20)


def test_agent_endpoint_refuses_anyone_but_the_api_server(cluster: Cluster) -> None:
    """No client certificate: refused at the TLS layer; a tenant user's certificate from the same
    CA: 403. Only the API server's kubelet-client identity gets in."""
    import ssl
    import urllib.request

    node = cluster.api.get("nodes", "d1")
    ep = node["metadata"]["annotations"]["centaurus.io/agent-endpoint"]
    pki = cluster.base / "target" / "pki"
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    with pytest.raises((ssl.SSLError, OSError, urllib.error.URLError)):
        urllib.request.urlopen(f"{ep}/pods", context=ctx, timeout=5).read()
    kc = cluster.target.kubeconfig("system", "admin")
    import yaml

    user = yaml.safe_load(Path(kc).read_text())["users"][0]["user"]
    import base64
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        crt, key = Path(d) / "c.crt", Path(d) / "c.key"
        crt.write_bytes(base64.b64decode(user["client-certificate-data"]))
        key.write_bytes(base64.b64decode(user["client-key-data"]))
        ctx.load_cert_chain(str(crt), str(key))
        with pytest.raises(urllib.error.HTTPError) as exc:
            urllib.request.urlopen(f"{ep}/pods", context=ctx, timeout=5).read()
    assert exc.value.code == 403
    assert json.loads(exc.value.read())["reason"] == "Forbidden"


def test_unknown_pod_stream_requests_are_clear_errors(cluster: Cluster, ns: str) -> None:
    with pytest.raises(ApiError) as exc:
        cluster.api.request("GET", f"/api/v1/namespaces/{ns}/pods/nosuch/log")
    assert exc.value.code == 404
    cluster.api.create("pods", pod("unbound", node=None, nodeSelector={"no-such": "label"}), namespace=ns)
    with pytest.raises(ApiError) as exc:
        cluster.api.request("GET", f"/api/v1/namespaces/{ns}/pods/unbound/log")
    assert exc.value.code == 400 and "host" in str(exc.value)


def test_agents_are_fault_injection_components(cluster: Cluster, ns: str) -> None:
    """``stop_component("agent-d2")`` is a node crash (SIGKILL: the lease stops, pods keep running);
    ``start_component`` brings the agent back, which adopts them."""
    target = cluster.target
    agents = {c["name"]: c for c in target.components() if c["kind"] == "agent"}
    assert set(agents) >= {"agent-d1", "agent-d2"} and agents["agent-d2"]["zone"] == "az2"
    cluster.api.create("pods", pod("survivor", node="d2"), namespace=ns)
    before = wait_pod(cluster.api, ns, "survivor", running, what="Running")
    lease = cluster.api.get(
        "leases", "d2", namespace="kube-node-lease", group_version="coordination.k8s.io/v1"
    )
    target.stop_component("agent-d2")
    assert "d2" not in cluster.fleet.alive()
    uid = before["metadata"]["uid"]
    assert subprocess.run(
        ["ip", "netns", "pids", f"cl-pod-{uid}"], capture_output=True, text=True
    ).stdout.strip()
    target.start_component("agent-d2")
    assert "d2" in cluster.fleet.alive()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        now = cluster.api.get(
            "leases", "d2", namespace="kube-node-lease", group_version="coordination.k8s.io/v1"
        )
        if now["spec"]["renewTime"] != lease["spec"]["renewTime"]:
            break
        time.sleep(0.2)
    assert now["spec"]["renewTime"] != lease["spec"]["renewTime"], (
        "the restarted agent does not renew its lease"
    )
    after = cluster.api.get("pods", "survivor", namespace=ns)
    assert cstat(after)["containerID"] == cstat(before)["containerID"] and running(after)
