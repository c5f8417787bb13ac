"""logs, exec, attach and port-forward through the API server to the node agent, with the real
clients: kubectl 1.33 (WebSockets, SPDY tunneled in a WebSocket for port-forward), Debian's
kubectl 1.20 (SPDY/3.1) and the kubernetes python client's ``stream`` (channel protocol v4/v5).
Tenant isolation holds on every one: another tenant's pod is 404."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from centaurus.client.rest import ApiClient, ApiError

from .conftest import Cluster, phase, pod, running, wait_pod

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]
VERSIONS = ("1.33", "1.20")


@pytest.fixture(scope="module")
def streams_ns(cluster: Cluster) -> Iterator[str]:
    ns = "cl-ag-streams"
    api = cluster.api
    api.create("namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    api.create(
        "pods",
        pod(
            "talker",
            ["sh", "-c", "echo line1; echo line2; echo line3; trap 'exit 0' TERM; sleep 3600 & wait"],
        ),
        namespace=ns,
    )
    api.create(
        "pods", pod("server", ["nc", "-ll", "-p", "8080", "-e", "echo", "PFTOKEN"], node="d2"), namespace=ns
    )
    for name in ("talker", "server"):
        wait_pod(api, ns, name, running, what="Running")
    yield ns
    api.delete("namespaces", ns, check=False)


@pytest.mark.parametrize("version", VERSIONS)
def test_kubectl_logs_and_tail(cluster: Cluster, streams_ns: str, version: str) -> None:
    out = cluster.kubectl(version, "logs", "talker", "-n", streams_ns).stdout
    assert out.splitlines() == ["line1", "line2", "line3"]
    out = cluster.kubectl(version, "logs", "talker", "-n", streams_ns, "--tail=1").stdout
    assert out.splitlines() == ["line3"]


def test_kubectl_logs_follow_streams_new_lines(cluster: Cluster, ns: str) -> None:
    cluster.api.create(
        "pods",
        pod(
            "ticker",
            ["sh", "-c", "i=0; while [ $i -lt 30 ]; do echo tick$i; i=$((i+1)); sleep 0.2; done"],
            restart="Never",
        ),
        namespace=ns,
    )
    wait_pod(cluster.api, ns, "ticker", lambda p: running(p) or phase("Succeeded")(p), what="started")
    cp = cluster.kubectl("1.33", "logs", "-f", "ticker", "-n", ns, timeout=30)
    lines = cp.stdout.splitlines()
    assert lines[0] == "tick0" and lines[-1] == "tick29" and len(lines) == 30


@pytest.mark.parametrize("version", VERSIONS)
def test_kubectl_exec_streams_and_exit_codes(cluster: Cluster, streams_ns: str, version: str) -> None:
    cp = cluster.kubectl(
        version,
        "exec",
        "talker",
        "-n",
        streams_ns,
        "--",
        "sh",
        "-c",
        "echo to-out; echo to-err >&2; exit 3",
        check=False,
    )
    assert cp.returncode == 3, cp.stderr
    assert cp.stdout.strip() == "to-out" and "to-err" in cp.stderr
    cp = cluster.kubectl(
        version,
        "exec",
        "-i",
        "talker",
        "-n",
        streams_ns,
        "--",
        "sh",
        "-c",
        "wc -c; cat",
        input="hello stdin\n",
    )
    assert cp.stdout.split() == ["12"], cp.stdout


@pytest.mark.parametrize("version", VERSIONS)
def test_kubectl_exec_with_a_terminal(cluster: Cluster, streams_ns: str, version: str) -> None:
    """``exec -it``: kubectl asks for a tty (and a resize stream); driven through ``script`` so
    kubectl itself has a terminal (97x31 -> the container sees the size kubectl sent).

    The size travels on its own stream/channel, asynchronously to the process's start (as with a
    kubelet): the agent waits for the first size before starting the exec and applies it right
    after, but crun runs the process without waiting for that, so the command gives the size up
    to 2 s to arrive before it reads it."""
    from .conftest import KUBECTL

    binary = KUBECTL[version]
    if not binary.exists():
        pytest.skip(f"not-verified: kubectl {version} is not installed here")
    cmd = (
        f"stty cols 97 rows 31; {binary} --kubeconfig={cluster.kubeconfig} "
        f"--cache-dir={cluster.base}/kc-tty-{version} exec -it talker -n {streams_ns} -- "
        "sh -c 'tty; i=0; while [ \"$(stty size 2>/dev/null)\" != \"31 97\" ] && [ $i -lt 20 ]; "
        "do sleep 0.1; i=$((i+1)); done; stty size; echo done'"
    )
    cp = subprocess.run(
        ["script", "-qec", cmd, "/dev/null"], capture_output=True, text=True, timeout=60, input=""
    )
    out = cp.stdout.replace("\r", "")
    assert "/dev/pts/" in out and "done" in out, out
    assert "31 97" in out, out


def test_kubectl_attach_follows_output(cluster: Cluster, ns: str) -> None:
    cluster.api.create(
        "pods", pod("att", ["sh", "-c", "sleep 1; echo attached-out; sleep 1"], restart="Never"), namespace=ns
    )
    wait_pod(cluster.api, ns, "att", running, what="Running")
    cp = cluster.kubectl("1.33", "attach", "att", "-n", ns, timeout=30, check=False)
    assert "attached-out" in cp.stdout, (cp.stdout, cp.stderr)


@pytest.mark.parametrize("version", VERSIONS)
def test_kubectl_port_forward(cluster: Cluster, streams_ns: str, version: str) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    binary = {"1.33": "/usr/lib/google-cloud-sdk/bin/kubectl.1.33"}.get(version)
    cluster.kubectl(version, "version", "--client", check=False)  # skips when absent
    from .conftest import KUBECTL

    binary = str(KUBECTL[version])
    proc = subprocess.Popen(
        [
            binary,
            f"--kubeconfig={cluster.kubeconfig}",
            f"--cache-dir={cluster.base}/pf-{version}",
            "port-forward",
            "pod/server",
            f"{port}:8080",
            "-n",
            streams_ns,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        got = []
        deadline = time.monotonic() + 20
        while len(got) < 2 and time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
                    data = c.recv(100)
                    if data:
                        got.append(data)
            except OSError:
                time.sleep(0.2)
        assert got == [b"PFTOKEN\n", b"PFTOKEN\n"], (got, proc.stderr)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _python_client(cluster: Cluster, tenant: str = "system") -> Any:
    from kubernetes import client, config

    cfg = client.Configuration()
    config.load_kube_config(
        config_file=str(cluster.target.kubeconfig(tenant, "admin")), client_configuration=cfg
    )
    return client.CoreV1Api(client.ApiClient(cfg))


def test_python_client_stream_exec(cluster: Cluster, streams_ns: str) -> None:
    from kubernetes.stream import stream

    core = _python_client(cluster)
    out = stream(
        core.connect_get_namespaced_pod_exec,
        "talker",
        streams_ns,
        command=["sh", "-c", "echo py-out; echo py-err >&2"],
        stderr=True,
        stdin=False,
        stdout=True,
        tty=False,
    )
    assert "py-out" in out and "py-err" in out
    ws = stream(
        core.connect_get_namespaced_pod_exec,
        "talker",
        streams_ns,
        command=["sh", "-c", "read x; echo got:$x; exit 4"],
        stderr=True,
        stdin=True,
        stdout=True,
        tty=False,
        _preload_content=False,
    )
    ws.write_stdin("abc\n")
    ws.run_forever(timeout=10)
    assert ws.returncode == 4  # read before read_all(), which drops every channel incl. the error one
    assert "got:abc" in ws.read_stdout()


def test_python_client_port_forward(cluster: Cluster, streams_ns: str) -> None:
    from kubernetes.stream import portforward

    core = _python_client(cluster)
    pf = portforward(core.connect_get_namespaced_pod_portforward, "server", streams_ns, ports="8080")
    sock = pf.socket(8080)
    sock.settimeout(10)
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(100)
        if not chunk:
            break
        data += chunk
    sock.close()
    assert data == b"PFTOKEN\n"
    assert pf.error(8080) is None


def test_other_tenants_pods_are_404_for_streams(cluster: Cluster, streams_ns: str) -> None:
    target = cluster.target
    tenant = "cl-agt-other"
    target.ensure_tenant(tenant)
    try:
        other = ApiClient.from_kubeconfig(str(target.kubeconfig(tenant, "admin")))
        try:
            for sub in ("log", "exec?command=ls", "portforward?ports=8080"):
                path = f"/api/v1/namespaces/{streams_ns}/pods/talker/{sub}"
                with pytest.raises(ApiError) as exc:
                    other.request("GET", path)
                assert exc.value.code == 404, (sub, exc.value)
            with pytest.raises(ApiError) as exc:
                other.request("GET", f"/api/v1/tenants/system/namespaces/{streams_ns}/pods/talker/log")
            assert exc.value.code in (403, 404)
        finally:
            other.close()
        cp = cluster.kubectl("1.33", "exec", "talker", "-n", streams_ns, "--", "true", check=False)
        assert cp.returncode == 0  # the owner still can
    finally:
        cluster.api.delete("tenants", tenant, check=False)


def test_exec_without_upgrade_and_bad_container_are_clear(cluster: Cluster, streams_ns: str) -> None:
    with pytest.raises(ApiError) as exc:
        cluster.api.request("POST", f"/api/v1/namespaces/{streams_ns}/pods/talker/exec?command=ls")
    assert exc.value.code == 400 and "Upgrade" in str(exc.value)
    with pytest.raises(ApiError) as exc:
        cluster.api.request("GET", f"/api/v1/namespaces/{streams_ns}/pods/talker/log?container=nope")
    assert exc.value.code == 400 and "nope" in str(exc.value)
