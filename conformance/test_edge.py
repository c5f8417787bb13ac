"""Edge, Fornax (Fornax releases v0.1-v0.3; whitepaper §4.4.4): missions to selected edge
clusters with retries, status aggregation and commands, hierarchical edge clusters, disconnection
tolerance, edge-edge communication through gateways, and a protected inter-gateway channel.

Shapes follow Fornax: ``Mission`` and ``EdgeCluster`` are cluster-scoped kinds of group
``edgeclusters.kubeedge.io/v1``; a Mission carries the workload as YAML text in
``spec.content``, chooses clusters in ``spec.placement.clusters`` (or ``matchlabels``), may name a
``spec.statecheck.command`` (a kubectl command run in each edge cluster), and reports per-cluster
state in ``state``. The target (capability ``edge``) describes its edge clusters in
``target.describe()["edge"]``: ``{"clusters": [{"name", "parent", "kubeconfig", "gateway"}],
"gateways": [{"cluster", "host", "channel": {"address", "protocol"}}]}``.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from support import faults, labnet
from support.names import unique
from support.pods import PodFactory, tcp_probe_pod, tcp_server_pod
from support.waiting import eventually

from centaurus.client.rest import ApiClient, ApiError

pytestmark = pytest.mark.timeout(420)
EDGE = "edgeclusters.kubeedge.io/v1"


class EdgeClusters:
    def __init__(self, target: Any) -> None:
        info = target.describe().get("edge") or {}
        self.info = info
        self.clusters = {c["name"]: c for c in info.get("clusters", [])}
        self._clients: dict[str, ApiClient] = {}

    def client(self, name: str) -> ApiClient:
        if name not in self._clients:
            self._clients[name] = ApiClient.from_kubeconfig(str(self.clusters[name]["kubeconfig"]))
        return self._clients[name]

    def children(self, parent: str | None) -> list[str]:
        return [n for n, c in self.clusters.items() if c.get("parent") == parent]

    def close(self) -> None:
        for c in self._clients.values():
            c.close()


@pytest.fixture
def edge(target: Any, requires: Any) -> Iterator[EdgeClusters]:
    requires("edge")
    e = EdgeClusters(target)
    assert len(e.children(None)) >= 2, f"need two edge clusters under the cloud, have {list(e.clusters)}"
    yield e
    e.close()


def mission(name: str, content: dict[str, Any], clusters: list[str], command: str = "") -> dict[str, Any]:
    spec: dict[str, Any] = {"content": yaml.safe_dump(content), "placement": {"clusters": [{"name": c}
                                                                                          for c in clusters]}}
    if command:
        spec["statecheck"] = {"command": command}
    return {"apiVersion": EDGE, "kind": "Mission", "metadata": {"name": name}, "spec": spec}


def workload(name: str, token: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "default"},
            "data": {"k": token}}


def present(client: ApiClient, name: str) -> bool:
    try:
        client.get("configmaps", name, namespace="default")
        return True
    except ApiError as exc:
        if exc.code == 404:
            return False
        raise


@pytest.fixture
def missions(api: ApiClient) -> Iterator[list[str]]:
    made: list[str] = []
    yield made
    for m in made:
        with contextlib.suppress(Exception):
            api.delete("missions", m, group_version=EDGE, check=False)


# ---- EDGE-1 --------------------------------------------------------------------------------------
@pytest.mark.requirement("EDGE-1")
def test_mission_reaches_exactly_the_selected_clusters(api: ApiClient, edge: EdgeClusters,
                                                       missions: list[str]) -> None:
    """A Mission placed on one edge cluster creates its workload there and not in the others;
    deleting the Mission removes the workload."""
    chosen, other = edge.children(None)[:2]
    name, token = unique("mi"), unique("tok")
    api.create("missions", mission(name, workload(name, token), [chosen]), group_version=EDGE)
    missions.append(name)
    eventually(lambda: present(edge.client(chosen), name), timeout=90, what=f"workload on {chosen}")
    assert edge.client(chosen).get("configmaps", name, namespace="default")["data"] == {"k": token}
    assert not present(edge.client(other), name), f"mission leaked to {other}"
    api.delete("missions", name, group_version=EDGE)
    eventually(lambda: not present(edge.client(chosen), name), timeout=90, what="workload removed")


@pytest.mark.requirement("EDGE-1")
def test_mission_delivery_is_retried(api: ApiClient, target: Any, edge: EdgeClusters, missions: list[str],
                                     requires: Any) -> None:
    """A Mission for an edge cluster whose API is down at creation time is delivered once the
    cluster is back: distribution retries instead of giving up."""
    requires("fault-injection")
    chosen = edge.children(None)[0]
    apis = [c["name"] for c in faults.components(target, kind="apiserver", cluster=chosen)]
    assert apis, f"target lists no apiserver component of edge cluster {chosen}"
    name = unique("mr")
    with faults.stopped(target, apis):
        api.create("missions", mission(name, workload(name, "retry"), [chosen]), group_version=EDGE)
        missions.append(name)
        time.sleep(5)
    eventually(lambda: present(edge.client(chosen), name), timeout=120, what="delivery after the outage")


# ---- EDGE-2 --------------------------------------------------------------------------------------
@pytest.mark.requirement("EDGE-2")
def test_mission_state_is_aggregated_from_command_output(api: ApiClient, edge: EdgeClusters,
                                                         missions: list[str]) -> None:
    """A Mission with a state-check command, placed on two edge clusters: the command runs in each
    cluster and the Mission's state lists each cluster with the command's output there."""
    clusters = edge.children(None)[:2]
    name, token = unique("ms"), unique("st").replace("-", "")
    cmd = f"kubectl get configmap {name} -n default -o jsonpath={{.data.k}}"
    api.create("missions", mission(name, workload(name, token), clusters, cmd), group_version=EDGE)
    missions.append(name)

    def aggregated() -> bool:
        state = api.get("missions", name, group_version=EDGE).get("state") or {}
        return all(token in str(state.get(c, "")) for c in clusters)

    eventually(aggregated, timeout=120, interval=1.0, what=f"state of {name} from {clusters}")


# ---- EDGE-3 --------------------------------------------------------------------------------------
@pytest.mark.requirement("EDGE-3")
def test_hierarchical_edge_clusters(api: ApiClient, edge: EdgeClusters, missions: list[str]) -> None:
    """An edge cluster with its own child (edge of edge): the child's EdgeCluster object lists the
    grandchild in status.edgeclusters, and a Mission created in the cloud for the grandchild is
    delivered to it through the middle layer."""
    middle = next((c for c in edge.children(None) if edge.children(c)), None)
    assert middle, f"no edge cluster with children: {edge.clusters}"
    leaf = edge.children(middle)[0]
    ec = api.get("edgeclusters", middle, group_version=EDGE)
    assert leaf in (ec.get("status") or {}).get("edgeclusters", []), ec.get("status")
    name = unique("mh")
    api.create("missions", mission(name, workload(name, "deep"), [leaf]), group_version=EDGE)
    missions.append(name)
    eventually(lambda: present(edge.client(leaf), name), timeout=120, what=f"workload on {leaf}")


# ---- EDGE-4 --------------------------------------------------------------------------------------
@pytest.mark.requirement("EDGE-4")
def test_edge_keeps_running_while_disconnected_and_resyncs(api: ApiClient, target: Any, edge: EdgeClusters,
                                                           missions: list[str], requires: Any) -> None:
    """Cut one edge cluster off from the cloud (its edge link stopped): its delivered workload
    stays and its own API keeps serving; a Mission created during the cut is delivered after the
    link returns, and the cloud sees the cluster healthy again."""
    requires("fault-injection")
    child = edge.children(None)[0]
    first = unique("d1")
    api.create("missions", mission(first, workload(first, "a"), [child]), group_version=EDGE)
    missions.append(first)
    eventually(lambda: present(edge.client(child), first), timeout=90)
    links = [c["name"] for c in faults.components(target, kind="edge-link", cluster=child)]
    assert links, f"target lists no edge-link component for {child}"
    second = unique("d2")
    with faults.stopped(target, links):
        local = edge.client(child)
        assert present(local, first), "workload vanished during the disconnection"
        local.create("configmaps", workload(unique("local"), "x"), namespace="default")
        api.create("missions", mission(second, workload(second, "b"), [child]), group_version=EDGE)
        missions.append(second)
    eventually(lambda: present(edge.client(child), second), timeout=120, what="resync after reconnection")
    eventually(lambda: (api.get("edgeclusters", child, group_version=EDGE).get("status") or {})
               .get("healthstatus", "").lower() in ("healthy", "ready"), timeout=90, what="cluster healthy")


# ---- EDGE-5 and EDGE-6 ---------------------------------------------------------------------------
VNI = 4242


def _vpc_across(edge: EdgeClusters, a: str, b: str) -> None:
    """The same VPC (fixed VNI) in two edge clusters, one subnet each."""
    for cluster, third in ((a, "1"), (b, "2")):
        c = edge.client(cluster)
        c.create("vpcs", {"apiVersion": "mizar.com/v1", "kind": "Vpc", "metadata": {"name": "edge-vpc"},
                          "spec": {"ip": "10.77.0.0", "prefix": "16", "vni": str(VNI), "dividers": 1}},
                 namespace="default", group_version="mizar.com/v1")
        c.create("subnets", {"apiVersion": "mizar.com/v1", "kind": "Subnet",
                             "metadata": {"name": f"edge-s{third}"},
                             "spec": {"ip": f"10.77.{third}.0", "prefix": "24", "vpc": "edge-vpc",
                                      "vni": str(VNI), "bouncers": 1}},
                 namespace="default", group_version="mizar.com/v1")


def _pod_in(name: str, subnet: str, pod: dict[str, Any]) -> dict[str, Any]:
    notes = pod["metadata"].setdefault("annotations", {})
    notes.update({"mizar.com/vpc": "edge-vpc", "mizar.com/subnet": subnet})
    return pod


@pytest.fixture
def edge_pair(edge: EdgeClusters, requires: Any) -> Iterator[tuple[str, str]]:
    requires("mizar")
    a, b = edge.children(None)[:2]
    _vpc_across(edge, a, b)
    yield a, b
    for cluster in (a, b):
        c = edge.client(cluster)
        for plural, name in (("subnets", "edge-s1"), ("subnets", "edge-s2"), ("vpcs", "edge-vpc")):
            with contextlib.suppress(Exception):
                c.delete(plural, name, namespace="default", group_version="mizar.com/v1", check=False)


@pytest.mark.requirement("EDGE-5")
def test_edge_to_edge_pods_talk_through_gateways(edge: EdgeClusters, edge_pair: tuple[str, str]) -> None:
    """A VPC with a given VNI spans two edge clusters. Each cluster gets the other's subnet as a
    virtual remote subnet whose bouncer is its gateway host, and a pod in one cluster reaches a
    pod in the other by its VPC address."""
    a, b = edge_pair
    gw_a = edge.clusters[a].get("gateway")
    assert gw_a, f"edge cluster {a} names no gateway host"

    def remote_subnet_via_gateway() -> bool:
        subs = edge.client(a).list("subnets", namespace="default", group_version="mizar.com/v1")["items"]
        remote = [s for s in subs if s["spec"].get("ip") == "10.77.2.0"]
        bouncers = edge.client(a).list("bouncers", namespace="default", group_version="mizar.com/v1")["items"]
        return bool(remote) and any(x["spec"].get("net") == remote[0]["metadata"]["name"]
                                    and x["spec"].get("droplet") == gw_a for x in bouncers)

    eventually(remote_subnet_via_gateway, timeout=90,
               what=f"{b}'s subnet virtual in {a} with {gw_a} as bouncer")
    pa, pb = PodFactory(edge.client(a), "default"), PodFactory(edge.client(b), "default")
    try:
        token = unique("ee").replace("-", "")
        srv = pb.start(_pod_in("srv", "edge-s2", tcp_server_pod(unique("srv"), 8080, token)), timeout=120)
        probe = _pod_in("cli", "edge-s1", tcp_probe_pod(unique("cli"), srv["status"]["podIP"], 8080, token,
                                                         attempts=20))
        assert pa.run_to_completion(probe, timeout=120) == "Succeeded"
    finally:
        pa.cleanup()
        pb.cleanup()


@pytest.mark.requirement("EDGE-6")
def test_inter_gateway_channel_is_encrypted(edge: EdgeClusters, edge_pair: tuple[str, str],
                                            need_lab: Any) -> None:
    """While pods of two edge clusters exchange a known token through their gateways, no frame on
    the substrate between the gateways carries the token or the pods' addresses in clear text."""
    a, b = edge_pair
    gws = edge.info.get("gateways") or []
    assert len(gws) >= 2, f"need two gateways, have {gws}"
    switch = need_lab.hosts("switch")
    assert switch, "no substrate switch to observe the channel on"
    pa, pb = PodFactory(edge.client(a), "default"), PodFactory(edge.client(b), "default")
    token = ("SECRET" + unique("x").replace("-", "")).upper()
    try:
        srv = pb.start(_pod_in("srv", "edge-s2", tcp_server_pod(unique("srv"), 8080, token)), timeout=120)
        hosts = " or ".join(f"host {g['channel']['address'].rsplit(':', 1)[0]}" for g in gws)
        with labnet.Capture(need_lab, switch[0].name, hosts, count=200, timeout=15) as cap:
            probe = _pod_in("cli", "edge-s1",
                            tcp_probe_pod(unique("cli"), srv["status"]["podIP"], 8080, token, attempts=10))
            assert pa.run_to_completion(probe, timeout=120) == "Succeeded"
            frames = cap.wait()
    finally:
        pa.cleanup()
        pb.cleanup()
    assert frames, "no inter-gateway traffic observed"
    ip_bytes = socket.inet_aton(srv["status"]["podIP"])
    leaks = [f for f in frames if token.encode() in f or ip_bytes in f[34:]]
    assert not leaks, f"{len(leaks)} of {len(frames)} inter-gateway frames carry the payload or inner " \
        "addresses in clear text"


@pytest.mark.requirement("EDGE-6")
def test_inter_gateway_channel_rejects_unauthenticated_peers(edge: EdgeClusters, need_lab: Any,
                                                             requires: Any) -> None:
    """The gateways' channel endpoint does not accept a peer without credentials: a TLS client
    without a certificate is refused (TLS channels), and no gateway answers plain datagrams from a
    host that is not a configured peer (datagram channels)."""
    requires("edge")
    gws = edge.info.get("gateways") or []
    assert gws, "no gateway described"
    droplet = need_lab.hosts("droplet")[0].name
    for gw in gws:
        host, port = gw["channel"]["address"].rsplit(":", 1)
        proto = gw["channel"].get("protocol")
        assert proto in ("tls", "dtls", "wireguard", "ipsec"), \
            f"unknown or clear-text channel protocol {proto!r}"
        if proto == "tls":
            script = ("import socket,ssl,sys\nc=ssl.create_default_context();c.check_hostname=False;"
                      "c.verify_mode=ssl.CERT_NONE\n"
                      f"s=socket.create_connection(('{host}',{port}),timeout=3)\n"
                      "try:\n  t=c.wrap_socket(s); t.sendall(b'hello'); d=t.recv(10)\n"
                      "  sys.exit(0 if d else 1)\nexcept (ssl.SSLError, OSError):\n  sys.exit(1)\n")
            cp = need_lab.run(droplet, [sys.executable, "-c", script], timeout=20, check=False)
            assert cp.returncode != 0, f"gateway {gw['cluster']} accepted a TLS peer without credentials"
        else:
            script = ("import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.settimeout(2)\n"
                      f"s.sendto(b'\\x00'*64,('{host}',{port}))\n"
                      "try:\n  s.recvfrom(100); print('answered')\nexcept OSError:\n  print('silent')\n")
            cp = need_lab.run(droplet, [sys.executable, "-c", script], timeout=20, check=False)
            assert "silent" in cp.stdout, f"gateway {gw['cluster']} answered an unauthenticated datagram"
