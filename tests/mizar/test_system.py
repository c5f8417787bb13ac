"""The whole system on the netns lab (default spec, mizar-xdp): the builtin target with its node
agents, network operators and transit daemons. Pods are real crun containers; a pod's network is
its Mizar endpoint, provisioned through the Endpoint object before the pod runs.

* two tenants whose default networks use the same CIDR: pods of tenant A on different droplets
  talk (ICMP, TCP, UDP, HTTP), tenant B cannot reach them (and A never reaches B's server at the
  same address); a pod on a second network of A's VPC is reached through the VPC's divider;
  deleting a pod removes its endpoint from every droplet;
* kill -9 of a network operator, of a droplet's transitd and of a node agent during a burst of
  pod creations: every pod ends Running with a working endpoint or Failed with a reason, and no
  droplet holds an endpoint that is not exactly where it belongs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from centaurus.client.rest import ApiClient, ApiError
from centaurus.labs.netns import NetnsLab
from centaurus.labs.spec import load_spec
from centaurus.mizar import model as M
from centaurus.targets.base import TargetContext
from centaurus.targets.builtin import BuiltinTarget

from .conftest import unique, wait

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]
ROOT = Path(__file__).resolve().parents[2]
Obj = dict[str, Any]


class System:
    def __init__(self, target: BuiltinTarget, lab: NetnsLab, state: Path) -> None:
        self.target, self.lab, self.state = target, lab, state
        self.api: ApiClient = target.client()

    def droplets(self) -> list[str]:
        return [h.name for h in self.lab.hosts("droplet")]

    def dump(self, d: str) -> Any:
        return self.lab.dataplane.client(self.lab.droplet(d)).dump()

    def holders(self) -> dict[tuple[int, str], set[str]]:
        out: dict[tuple[int, str], set[str]] = {}
        for d in self.droplets():
            for e in self.dump(d).endpoints:
                out.setdefault((int(e.vni), str(e.ip)), set()).add(d)
        return out


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    base = tmp_path_factory.mktemp("sys")
    lab = NetnsLab(base / "lab", {})
    lab.up(load_spec(ROOT / "labs" / "default.yaml"))
    target = BuiltinTarget()
    try:
        target.up(TargetContext(state_dir=base / "target", lab=lab))
        s = System(target, lab, base / "target")
        wait(
            lambda: (
                (s.api.get("networks", "default", tenant="system").get("status") or {}).get("phase")
                == "Ready"
            ),
            60,
            "system default network Ready",
        )
        yield s
    finally:
        target.down()
        lab.down()


# ---- pods ------------------------------------------------------------------------------------------
def pod(
    name: str,
    node: str,
    command: list[str] | None = None,
    image: str = "busybox:1.36",
    network: str | None = None,
    restart: str = "Always",
) -> Obj:
    labels = {"app": "cl-mizar"}
    if network:
        labels[M.L_NETWORK] = network
    c: Obj = {"name": "main", "image": image, "imagePullPolicy": "IfNotPresent"}
    if command:
        c["command"] = command
    elif image.startswith("busybox"):
        c["command"] = ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "nodeName": node,
            "containers": [c],
            "restartPolicy": restart,
            "terminationGracePeriodSeconds": 1,
        },
    }


def running(api: ApiClient, name: str, tenant: str, timeout: float = 90) -> Obj:
    def ok() -> Obj | None:
        p = api.get("pods", name, namespace="default", tenant=tenant)
        st = p.get("status") or {}
        if st.get("phase") == "Failed":
            raise AssertionError(f"pod {tenant}/{name} failed: {st.get('reason')} {st.get('message')}")
        return p if st.get("phase") == "Running" and st.get("podIP") else None

    out: Obj = wait(ok, timeout, f"pod {tenant}/{name} Running", every=0.2)
    return out


def netns(p: Obj) -> str:
    return f"cl-pod-{p['metadata']['uid']}"


def in_pod(p: Obj, code: str, timeout: float = 15) -> subprocess.CompletedProcess[str]:
    """A Python snippet run inside the pod's network namespace (the client side of a check)."""
    return subprocess.run(
        ["ip", "netns", "exec", netns(p), "python3", "-c", code],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def ping(p: Obj, ip: str, count: int = 2) -> bool:
    r = subprocess.run(
        ["ip", "netns", "exec", netns(p), "ping", "-c", str(count), "-W", "1", ip],
        capture_output=True,
        text=True,
        timeout=20,
    )
    return r.returncode == 0


def tcp_line(p: Obj, ip: str, port: int, tries: int = 3) -> str | None:
    code = (
        f"import socket,sys\nfor _ in range({tries}):\n  try:\n"
        f"    s=socket.create_connection(('{ip}',{port}),timeout=2); print(s.recv(100).decode().strip()); "
        f"sys.exit(0)\n  except OSError: pass\nsys.exit(1)"
    )
    r = in_pod(p, code)
    return r.stdout.strip() if r.returncode == 0 else None


def http_get(p: Obj, ip: str) -> str | None:
    code = f"import urllib.request as u\nprint(u.urlopen('http://{ip}/', timeout=3).read().decode().strip())"
    r = in_pod(p, code)
    return r.stdout.strip() if r.returncode == 0 else None


def udp_echo(server: Obj, client: Obj, ip: str, port: int) -> bool:
    srv = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            netns(server),
            "python3",
            "-c",
            f"import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
            f"s.bind(('0.0.0.0',{port}))\nd,a=s.recvfrom(100)\ns.sendto(d.upper(),a)",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.3)
        code = (
            f"import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.settimeout(2)\n"
            f"s.sendto(b'udp-ok',('{ip}',{port}));print(s.recvfrom(100)[0].decode())"
        )
        r = in_pod(client, code)
        return r.returncode == 0 and r.stdout.strip() == "UDP-OK"
    finally:
        srv.kill()
        srv.wait()


def delta(before: dict[str, dict[str, int]], after: dict[str, dict[str, int]], name: str) -> dict[str, int]:
    return {d: after[d].get(name, 0) - before[d].get(name, 0) for d in after}


# ---- the must-show: two tenants, same CIDR ---------------------------------------------------------------
def test_two_tenants_same_cidr_talk_inside_and_are_isolated(system: System) -> None:
    api, lab = system.api, system.lab
    ta, tb = unique("ta"), unique("tb")
    for t in (ta, tb):
        system.target.ensure_tenant(t)
    try:
        for t in (ta, tb):
            net = wait(
                lambda t=t: (
                    (n := api.get("networks", "default", tenant=t))
                    and (n.get("status") or {}).get("phase") == "Ready"
                    and n
                ),
                60,
                f"{t} default network Ready",
            )
            assert net["status"]["cidr"] == "10.0.0.0/16", net["status"]
        vpc_a = api.get("networks", "default", tenant=ta)["status"]["vpc"]
        api.create(
            "networks",
            {
                "apiVersion": M.NETWORK_GV,
                "kind": "Network",
                "metadata": {"name": "second"},
                "spec": {"type": "mizar", "vpcID": "default", "cidr": "10.1.0.0/16"},
            },
            tenant=ta,
        )
        wait(
            lambda: (api.get("networks", "second", tenant=ta).get("status") or {}).get("phase") == "Ready",
            60,
            "second network Ready",
        )
        assert api.get("networks", "second", tenant=ta)["status"]["vpc"] == vpc_a, (
            "second network not in A's VPC"
        )
        divider = next(
            str(M.spec(d)["droplet"])
            for d in api.list("dividers", namespace=M.MIZAR_NS, group_version=M.GV)["items"]
            if M.spec(d).get("vpc") == vpc_a
        )
        second = api.get("networks", "second", tenant=ta)["status"]["subnet"]
        b2 = {
            str(M.spec(b)["droplet"])
            for b in api.list("bouncers", namespace=M.MIZAR_NS, group_version=M.GV)["items"]
            if M.spec(b).get("net") == second
        }
        # the client must have to ask a divider: neither a divider nor a bouncer of the second network
        client_node = next(d for d in system.droplets() if d != divider and d not in b2)
        far_node = next(d for d in system.droplets() if d not in (divider, client_node))
        servers = "nc -ll -p 7001 -e echo {t}"
        api.create(
            "pods",
            pod("srv", far_node, ["sh", "-c", servers.format(t="token-a")]),
            namespace="default",
            tenant=ta,
        )
        api.create("pods", pod("web", far_node, image="nginx"), namespace="default", tenant=ta)
        api.create("pods", pod("cli", client_node), namespace="default", tenant=ta)
        api.create(
            "pods",
            pod("srv", far_node, ["sh", "-c", servers.format(t="token-b")]),
            namespace="default",
            tenant=tb,
        )
        api.create("pods", pod("cli", client_node), namespace="default", tenant=tb)
        api.create(
            "pods",
            pod("srv2", far_node, ["sh", "-c", servers.format(t="token-c")], network="second"),
            namespace="default",
            tenant=ta,
        )
        srv_a, web_a, cli_a = (running(api, n, ta) for n in ("srv", "web", "cli"))
        srv_b, cli_b = running(api, "srv", tb), running(api, "cli", tb)
        srv_c = running(api, "srv2", ta)
        ip_a, ip_b, ip_c = (p["status"]["podIP"] for p in (srv_a, srv_b, srv_c))
        assert ip_c.startswith("10.1."), f"second network's pod got {ip_c}"
        assert srv_a["spec"]["nodeName"] != cli_a["spec"]["nodeName"]
        # tenant A: ICMP, TCP, UDP, HTTP across droplets
        assert ping(cli_a, ip_a), "ICMP between tenant A's pods failed"
        assert tcp_line(cli_a, ip_a, 7001) == "token-a"
        assert udp_echo(srv_a, cli_a, ip_a, 7002), "UDP between tenant A's pods failed"
        assert http_get(cli_a, web_a["status"]["podIP"]) is not None, "HTTP between tenant A's pods failed"
        # isolation with overlapping addresses: B's server is never reached from A, and vice versa
        got = tcp_line(cli_a, ip_b, 7001, tries=2)
        assert got in (None, "token-a"), f"tenant A reached tenant B's server: {got}"
        got = tcp_line(cli_b, ip_a, 7001, tries=2)
        assert got in (None, "token-b"), f"tenant B reached tenant A's server: {got}"
        # an address that exists in A's network but not in B's (A has 3 pods there, B 2)
        b_ips = {ip_b, cli_b["status"]["podIP"]}
        only_a = next(
            p["status"]["podIP"] for p in (srv_a, web_a, cli_a) if p["status"]["podIP"] not in b_ips
        )
        assert not ping(cli_b, only_a, count=1), f"tenant B pinged tenant A's {only_a}"
        assert tcp_line(cli_b, ip_b, 7001) == "token-b", "positive control in tenant B failed"
        # the second network of A's VPC, through the divider
        before = {d: lab.stats(d) for d in system.droplets()}
        assert tcp_line(cli_a, ip_c, 7001) == "token-c", "pod on the second network not reached"
        after = {d: lab.stats(d) for d in system.droplets()}
        assert delta(before, after, "via_divider")[client_node] >= 1, "the client did not send via a divider"
        # the divider forwards it to the network's bouncer ("divided"), or -- when it is that
        # bouncer too -- straight to the host ("bounced")
        fwd = delta(before, after, "divided")[divider] + delta(before, after, "bounced")[divider]
        assert fwd >= 1, f"divider {divider} forwarded nothing"
        # deleting a pod removes its endpoint everywhere
        vni = int(
            api.get("endpoints", "srv", namespace="default", tenant=ta, group_version=M.GV)["status"]["vni"]
        )
        assert (vni, ip_a) in system.holders()
        api.delete("pods", "srv", namespace="default", tenant=ta)
        wait(
            lambda: (vni, ip_a) not in system.holders(),
            60,
            "the deleted pod's endpoint gone from every droplet",
        )
        with pytest.raises(ApiError):
            api.get("endpoints", "srv", namespace="default", tenant=ta, group_version=M.GV)
    finally:
        for t in (ta, tb):
            with contextlib.suppress(ApiError):
                api.delete("tenants", t)


# ---- crashes during a burst ---------------------------------------------------------------------------
def _daemon_pid(lab: NetnsLab, droplet: str) -> int:
    procs = [
        p
        for p in lab.status()["processes"]
        if p["role"] == "transitd" and p["host"] == droplet and p["alive"]
    ]
    assert procs, f"no transitd running on {droplet}"
    return int(procs[0]["pid"])


def test_kill9_of_operator_transitd_and_agent_during_a_pod_burst(system: System) -> None:
    from centaurus.agent.fleet import Fleet

    api, lab, target = system.api, system.lab, system.target
    ns = unique("burst")
    api.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    nodes = system.droplets()
    names = [f"b{i}" for i in range(15)]
    fleet = Fleet(system.state)
    try:
        api.create("pods", pod("ref", nodes[0]), namespace=ns)
        api_ref = wait(
            lambda: (
                (p := api.get("pods", "ref", namespace=ns))
                and (p.get("status") or {}).get("phase") == "Running"
                and p
            ),
            90,
            "reference pod Running",
        )
        for i, n in enumerate(names):
            api.create("pods", pod(n, nodes[i % len(nodes)]), namespace=ns)
            if i == 3:
                target.stop_component("network-operator-0")  # SIGKILL
            if i == 6:
                os.kill(_daemon_pid(lab, nodes[1]), signal.SIGKILL)
            if i == 9:
                fleet.kill(nodes[2])
        time.sleep(1.0)
        target.start_component("network-operator-0")
        lab.restart_daemon(nodes[1])
        fleet.restart(nodes[2])

        def settled() -> list[Obj] | None:
            ps = [api.get("pods", n, namespace=ns) for n in names]
            done = [
                p
                for p in ps
                if (p.get("status") or {}).get("phase") in ("Running", "Failed")
                and ((p.get("status") or {}).get("phase") == "Failed" or (p.get("status") or {}).get("podIP"))
            ]
            return ps if len(done) == len(ps) else None

        pods = wait(settled, 180, "every pod Running or Failed", every=0.5)
        failed = [p for p in pods if p["status"]["phase"] == "Failed"]
        for p in failed:
            assert p["status"].get("reason") or p["status"].get("message"), (
                f"{p['metadata']['name']} failed silently"
            )
        ok = [p for p in pods if p["status"]["phase"] == "Running"]
        print(
            f"burst with kill -9 of an operator, a transitd and an agent: {len(ok)} Running, "
            f"{len(failed)} Failed ({[p['status'].get('reason') for p in failed]})"
        )
        assert len(ok) >= len(pods) - 2, f"{len(failed)} of {len(pods)} pods failed: " + "; ".join(
            f"{p['metadata']['name']}: {p['status'].get('reason')}" for p in failed
        )
        holders = system.holders()
        eps = {M.name(e): e for e in api.list("endpoints", namespace=ns, group_version=M.GV)["items"]}
        subnet = api.get("networks", "default", tenant="system")["status"]["subnet"]
        bset = {
            str(M.spec(b)["droplet"])
            for b in api.list("bouncers", namespace=M.MIZAR_NS, group_version=M.GV)["items"]
            if M.spec(b).get("net") == subnet and not M.deleting(b)
        }
        for p in ok:
            e = eps[p["metadata"]["name"]]
            assert M.phase(e) == M.PROVISIONED and M.spec(e)["ip"] == p["status"]["podIP"]
            key = (int(M.status(e)["vni"]), str(M.spec(e)["ip"]))
            assert holders.get(key) == {p["spec"]["nodeName"]} | bset, (
                f"{p['metadata']['name']} held by {holders.get(key)}, not its host + bouncers {bset}"
            )
            assert ping(api_ref, key[1], count=1) or ping(api_ref, key[1], count=2), (
                f"{p['metadata']['name']} ({key[1]}) does not answer"
            )
        vni = int(M.status(next(iter(eps.values())))["vni"])
        live = {
            (vni, str(M.spec(e).get("ip")))
            for e in api.list("endpoints", tenant="all", group_version=M.GV)["items"]
        }
        stray = [k for k in holders if k[0] == vni and k not in live]
        assert not stray, f"droplets hold endpoints no object describes: {stray}"
        for n in [*names, "ref"]:
            api.delete("pods", n, namespace=ns)
        keys = {(vni, str(M.spec(e).get("ip"))) for e in eps.values()}
        wait(
            lambda: not keys & set(system.holders()),
            90,
            "every endpoint of the burst gone from every droplet",
        )
    finally:
        with contextlib.suppress(Exception):
            target.start_component("network-operator-0")
        with contextlib.suppress(Exception):
            fleet.restart(nodes[2])
        with contextlib.suppress(ApiError):
            api.delete("namespaces", ns)
